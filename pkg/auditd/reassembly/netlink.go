package reassembly

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"
)

// receiveWake is how often a blocked receive wakes to check for shutdown
// and to run reassembly maintenance.
const receiveWake = 200 * time.Millisecond

// ReceiveBuffer is the socket buffer to ask for. In multicast mode a full
// buffer drops records (ENOBUFS); in unicast mode it pushes them back into
// the kernel's backlog, which is bounded too.
const ReceiveBuffer = 16 << 20

// socketFD returns the descriptor of a go-libaudit client's netlink socket,
// which the library keeps unexported; it is needed for a receive timeout
// (so shutdown never waits on a quiet socket) and a bigger buffer.
func socketFD(c *libaudit.AuditClient) (int, error) {
	nc, ok := c.Netlink.(*libaudit.NetlinkClient)
	if !ok {
		return -1, fmt.Errorf("audit client uses %T, not a netlink socket", c.Netlink)
	}
	f := reflect.ValueOf(nc).Elem().FieldByName("fd")
	if !f.IsValid() || f.Kind() != reflect.Int {
		return -1, errors.New("go-libaudit's netlink client has no fd field; check the pinned version")
	}
	return int(f.Int()), nil
}

// TuneSocket sets a receive timeout on c's socket, so Receive can notice
// shutdown on a quiet socket, and, when rcvbuf > 0, the receive buffer
// (SO_RCVBUFFORCE when permitted, else SO_RCVBUF up to rmem_max).
func TuneSocket(c *libaudit.AuditClient, rcvbuf int) error {
	fd, err := socketFD(c)
	if err != nil {
		return err
	}
	tv := unix.NsecToTimeval(receiveWake.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setting the audit socket's receive timeout: %w", err)
	}
	if rcvbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
				return fmt.Errorf("setting the audit socket's receive buffer: %w", err)
			}
		}
	}
	return nil
}

// Receive feeds every record from c into s until ctx is done, and runs
// s.Maintain at least every receiveWake, on the same goroutine. failed sees
// every receive error but a timeout or an interruption: ENOBUFS means the
// kernel dropped records for a slow multicast reader. Receive returns when
// the socket is closed (EBADF). c's socket must have been tuned with
// TuneSocket, or a quiet socket blocks shutdown.
func Receive(ctx context.Context, c *libaudit.AuditClient, s *Stream, failed func(error)) {
	lastTick := time.Now()
	for ctx.Err() == nil {
		msg, err := c.Receive(false)
		switch {
		case err == nil:
			// Replies and netlink control messages (below the first user
			// message type) are not records.
			if msg.Type >= 1100 {
				s.PushKernel(msg.Type, msg.Data)
			}
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		default:
			failed(err)
			if errors.Is(err, syscall.EBADF) {
				return
			}
		}
		if time.Since(lastTick) >= receiveWake {
			lastTick = time.Now()
			s.Maintain()
		}
	}
}
