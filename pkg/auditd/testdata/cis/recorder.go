// Command record joins the kernel's audit multicast group and writes every
// record as "TYPE BODY" lines (the form of netlink_records.txt) to the file
// named by its argument until SIGTERM or SIGINT.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	libaudit "github.com/elastic/go-libaudit/v2"

	"github.com/dockward/dockward/pkg/auditd/reassembly"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: record FILE")
		os.Exit(2)
	}
	f, err := os.Create(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	c, err := libaudit.NewMulticastAuditClient(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "joining the audit multicast group:", err)
		os.Exit(1)
	}
	// A big buffer, so a burst (a container start) is not dropped.
	if err := reassembly.TuneSocket(c, 16<<20); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	msgs := make(chan string, 4096)
	go func() {
		for {
			m, err := c.Receive(false)
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "receive:", err)
				continue
			}
			if m.Type >= 1100 {
				msgs <- fmt.Sprintf("%d %s\n", m.Type, m.Data)
			}
		}
	}()
	fmt.Println("ready")
	for {
		select {
		case <-ctx.Done():
			for len(msgs) > 0 {
				w.WriteString(<-msgs)
			}
			w.Flush()
			f.Close()
			return
		case s := <-msgs:
			w.WriteString(s)
			w.Flush()
		}
	}
}
