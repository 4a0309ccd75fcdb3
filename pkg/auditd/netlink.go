package auditd

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// receiveWake is how often a blocked receive wakes to check for shutdown
// and to run reassembly maintenance.
const receiveWake = 200 * time.Millisecond

// receiveBuffer is the socket buffer asked for. In multicast mode a full
// buffer drops records (ENOBUFS); in unicast mode it pushes them back into
// the kernel's backlog, which is bounded too.
const receiveBuffer = 16 << 20

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

// tuneSocket sets a receive timeout and, when rcvbuf > 0, the receive
// buffer (SO_RCVBUFFORCE when permitted, else SO_RCVBUF up to rmem_max).
func tuneSocket(c *libaudit.AuditClient, rcvbuf int) error {
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

// receiveLoop feeds every record from c into p until ctx is done. tick runs
// on the same goroutine at least every receiveWake.
func (s *Source) receiveLoop(ctx context.Context, c *libaudit.AuditClient, p *Pipeline) {
	lastTick := time.Now()
	var lastWarn time.Time
	for ctx.Err() == nil {
		msg, err := c.Receive(false)
		switch {
		case err == nil:
			// Replies and netlink control messages (below the first user
			// message type) are not records.
			if msg.Type >= 1100 {
				p.PushKernel(msg.Type, msg.Data)
			}
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.ENOBUFS):
			s.m.receiveErrors.WithLabelValues(reasonENOBUFS).Inc()
			if time.Since(lastWarn) > 10*time.Second {
				lastWarn = time.Now()
				s.log.Warn("audit records dropped: the receive buffer overflowed (ENOBUFS)",
					zap.String("hint", "dockward_audit_receive_errors_total{reason=\"enobufs\"} counts every occurrence"))
			}
		default:
			s.m.receiveErrors.WithLabelValues(reasonOther).Inc()
			if time.Since(lastWarn) > 10*time.Second {
				lastWarn = time.Now()
				s.log.Warn("receiving from the audit socket failed", zap.Error(err))
			}
			if errors.Is(err, syscall.EBADF) {
				return
			}
		}
		if time.Since(lastTick) >= receiveWake {
			lastTick = time.Now()
			p.Maintain()
		}
	}
}
