package hostfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo.
type Mount struct {
	Point  string // where it is mounted, in the process's mount namespace
	Root   string // the part of the filesystem mounted there
	FSType string
	Source string
	Dev    string // MAJOR:MINOR of the filesystem: one per superblock, shared by its bind mounts
}

// Mounts reads the mount table of the host's init process (PID 1), which is
// the host's own mount namespace whatever namespace this process runs in.
func (r Root) Mounts() ([]Mount, error) {
	data, err := r.ReadFile("/proc/1/mountinfo", 16<<20)
	if err != nil {
		return nil, fmt.Errorf("reading the host's mount table (/proc/1/mountinfo): %w", err)
	}
	return ParseMountinfo(data)
}

// ParseMountinfo parses mountinfo lines ("36 35 98:0 /mnt1 /mnt2 rw,noatime
// master:1 - ext3 /dev/root rw"). Paths are unescaped (\040 is a space).
func ParseMountinfo(data []byte) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d: want at least 10 fields with a \"-\" separator, got %q", n, truncateLine(sc.Text()))
		}
		out = append(out, Mount{Root: unescapeOctal(f[3]), Point: unescapeOctal(f[4]), FSType: f[sep+1], Source: unescapeOctal(f[sep+2]),
			Dev: f[2]})
	}
	return out, sc.Err()
}

// IsMountPoint reports whether host path p (symlinks resolved inside the
// root) is where a filesystem is mounted in the host's mount namespace,
// and returns the resolved path.
func (r Root) IsMountPoint(p string) (string, bool, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return "", false, err
	}
	mounts, err := r.Mounts()
	if err != nil {
		return real, false, err
	}
	for _, m := range mounts {
		if m.Point == real {
			return real, true, nil
		}
	}
	return real, false, nil
}

// unescapeOctal undoes the kernel's \ooo escapes of space, tab, newline and
// backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func truncateLine(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
