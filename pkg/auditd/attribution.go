package auditd

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/dockward/dockward/pkg/auditd/record"
)

// userCache resolves uids to names once; audit events repeat the same few
// ids, and a passwd lookup per event would cost more than the parse.
type userCache struct {
	mu    sync.Mutex
	names map[int64]string
	look  func(uid string) (string, error)
}

const userCacheMax = 4096

// newUserCache resolves names from the host's passwd database: under
// rootfs (an agent in a container sees the host there), else through
// os/user (which also asks NSS when built with cgo).
func newUserCache(rootfs string) *userCache {
	look := func(uid string) (string, error) {
		u, err := user.LookupId(uid)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}
	if rootfs != "" {
		passwd := filepath.Join(rootfs, "etc", "passwd")
		look = func(uid string) (string, error) { return passwdName(passwd, uid) }
	}
	return &userCache{names: map[int64]string{}, look: look}
}

// passwdName finds uid in a passwd file (name:x:uid:...).
func passwdName(path, uid string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 4)
		if len(f) == 4 && f[2] == uid {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("uid %s not in %s", uid, path)
}

// name returns the user name of uid, "unset" for the kernel's unset id,
// and "" when the id has no name.
func (c *userCache) name(uid int64) string {
	if uid == record.UnsetID {
		return "unset"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[uid]; ok {
		return n
	}
	n, err := c.look(strconv.FormatInt(uid, 10))
	if err != nil {
		n = ""
	}
	if len(c.names) >= userCacheMax {
		clear(c.names)
	}
	c.names[uid] = n
	return n
}

// containerOf finds the Docker container a process lives in from its
// cgroup path (cgroupfs: /docker/<id>, systemd: docker-<id>.scope). It
// returns "" for a host process or one that has exited; procRoot is /proc
// (a parameter for tests).
func containerOf(procRoot string, pid int64) string {
	if pid <= 0 {
		return ""
	}
	data, err := os.ReadFile(procRoot + "/" + strconv.FormatInt(pid, 10) + "/cgroup")
	if err != nil {
		return ""
	}
	return containerIDFromCgroup(data)
}

// containerIDFromCgroup extracts a 64-hex container ID that follows
// "docker-" or "docker/" in a /proc/PID/cgroup file.
func containerIDFromCgroup(data []byte) string {
	for _, marker := range [][]byte{[]byte("docker-"), []byte("docker/")} {
		rest := data
		for {
			i := bytes.Index(rest, marker)
			if i < 0 {
				break
			}
			rest = rest[i+len(marker):]
			if len(rest) >= 64 && isHex(rest[:64]) && (len(rest) == 64 || !isHexByte(rest[64])) {
				return string(rest[:64])
			}
		}
	}
	return ""
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !isHexByte(c) {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') }
