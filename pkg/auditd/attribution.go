package auditd

import (
	"bytes"
	"math"
	"os"
	"strconv"
	"sync"

	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/hostfs"
)

// userCache resolves uids to names once; audit events repeat the same few
// ids, and a passwd lookup per event would cost more than the parse.
type userCache struct {
	mu    sync.Mutex
	names map[int64]string
	look  func(uid uint32) (string, bool)
}

const userCacheMax = 4096

// newUserCache resolves names from the host's passwd file, read again on
// each uid not yet cached, so that a user added later is named too. An
// agent in a container sees the host's file under its rootfs.
func newUserCache(host hostfs.Root) *userCache {
	look := func(uid uint32) (string, bool) { return host.Users().Name(uid) }
	return &userCache{names: map[int64]string{}, look: look}
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
	n := ""
	if uid >= 0 && uid <= math.MaxUint32 {
		n, _ = c.look(uint32(uid))
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
