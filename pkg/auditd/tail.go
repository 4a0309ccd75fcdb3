package auditd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// tailer follows a log file across rename rotation (auditd's own, or
// logrotate's create) and copytruncate. After a rename it drains the old
// file before opening the new one, and after a truncation it starts over at
// the beginning, so no line is lost or read twice.
type tailer struct {
	path string
	poll time.Duration
	f    *os.File
	r    *bufio.Reader
	off  int64  // bytes consumed from f
	ino  uint64 // inode of f
	part []byte // a line without its newline yet
	skip bool   // the current line is oversized and is being dropped
	// head is the file's first bytes as first read. After copytruncate the
	// writer may refill the file past our offset before the next poll, so
	// a shrunken size alone would miss it; changed first bytes do not.
	head []byte
}

// headBytes is how much of the file start identifies its content; audit
// lines start with a unique timestamp and serial within it.
const headBytes = 64

// maxLineBytes bounds one line; auditd's records are far shorter, so a
// longer "line" is a corrupt file and is skipped rather than buffered.
const maxLineBytes = 1 << 20

func newTailer(path string, fromStart bool) (*tailer, error) {
	t := &tailer{path: path, poll: 100 * time.Millisecond}
	if err := t.open(); err != nil {
		return nil, err
	}
	if !fromStart {
		off, err := t.f.Seek(0, io.SeekEnd)
		if err != nil {
			t.f.Close()
			return nil, fmt.Errorf("seeking to the end of %s: %w", path, err)
		}
		t.off = off
	}
	return t, nil
}

func (t *tailer) open() error {
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("opening audit log %s: %w", t.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat of audit log %s: %w", t.path, err)
	}
	if t.f != nil {
		t.f.Close()
	}
	t.f, t.off, t.part, t.skip, t.head = f, 0, t.part[:0], false, nil
	t.ino = st.Sys().(*syscall.Stat_t).Ino
	t.r = bufio.NewReaderSize(f, 256<<10)
	return nil
}

func (t *tailer) Close() error {
	if t.f == nil {
		return nil
	}
	return t.f.Close()
}

// drain reads every complete line available now, calling fn for each.
func (t *tailer) drain(fn func(line string)) error {
	for {
		chunk, err := t.r.ReadSlice('\n')
		t.off += int64(len(chunk))
		if !t.skip && len(t.part)+len(chunk) > maxLineBytes {
			t.skip, t.part = true, t.part[:0]
		}
		if !t.skip {
			t.part = append(t.part, chunk...)
		}
		switch {
		case err == nil:
			if !t.skip {
				fn(string(t.part))
			}
			t.skip, t.part = false, t.part[:0]
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return fmt.Errorf("reading audit log %s: %w", t.path, err)
		}
	}
}

// follow calls fn for every line until ctx is done; idle runs whenever the
// file has nothing new (reassembly maintenance). The file is checked for
// truncation and rotation before every read, so content written after a
// copytruncate is never read from the old offset first.
func (t *tailer) follow(ctx context.Context, fn func(line string), idle func()) error {
	for ctx.Err() == nil {
		st, err := t.state()
		if err != nil {
			return err
		}
		switch st {
		case fileTruncated: // copytruncate: the new content starts at 0
			if _, err := t.f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("rewinding truncated audit log %s: %w", t.path, err)
			}
			t.r.Reset(t.f)
			t.off, t.part, t.skip, t.head = 0, t.part[:0], false, nil
		case fileRenamed:
			// What was appended to the old file before the new one
			// appeared belongs to it: read it, then switch.
			if err := t.drain(fn); err != nil {
				return err
			}
			if err := t.open(); err != nil {
				return err
			}
		}
		before := t.off
		if err := t.drain(fn); err != nil {
			return err
		}
		idle()
		if t.off != before || st != fileSame {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(t.poll):
		}
	}
	return nil
}

// readHead reads the first n bytes of the file without moving its offset.
func (t *tailer) readHead(n int64) []byte {
	b := make([]byte, n)
	k, _ := t.f.ReadAt(b, 0)
	return b[:k]
}

type fileState int

const (
	fileSame fileState = iota
	fileTruncated
	fileRenamed
)

// state looks for truncation or rotation once the file is read to its end.
func (t *tailer) state() (fileState, error) {
	st, err := t.f.Stat()
	if err != nil {
		return fileSame, fmt.Errorf("stat of audit log %s: %w", t.path, err)
	}
	if st.Size() < t.off {
		return fileTruncated, nil
	}
	if len(t.head) < headBytes && t.off > int64(len(t.head)) {
		t.head = t.readHead(min(t.off, headBytes))
	} else if len(t.head) > 0 && string(t.readHead(int64(len(t.head)))) != string(t.head) {
		return fileTruncated, nil
	}
	cur, err := os.Stat(t.path)
	if err != nil {
		return fileSame, nil // between rename and create: keep the old file
	}
	if cur.Sys().(*syscall.Stat_t).Ino != t.ino {
		return fileRenamed, nil
	}
	return fileSame, nil
}
