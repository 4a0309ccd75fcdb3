package auditd

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// pidContainers attributes processes to containers, remembering the
// container of every process it found in one, because a short-lived
// process and its parent may both be gone when their event is read: a
// docker exec'd shell that ran one command. Its PID is the one runc's init
// stage had when it joined the container's namespaces (events of the
// detections' rules, attributed while it lived). Only a gone process is
// looked up in it, so a PID the kernel reused for a live host process is
// never misattributed; the map is cleared when it reaches pidContainersMax.
type pidContainers struct {
	mu   sync.Mutex
	byID map[int64]string
}

const pidContainersMax = 8192

func newPIDContainers() *pidContainers { return &pidContainers{byID: map[int64]string{}} }

// of is the container of process pid (whose parent is ppid), "" for the
// host: from its cgroup; else (it exited) from what was seen of it alive;
// else from its parent: the parent's cgroup, or the container the parent
// runs as a shim, or, the parent gone too, what was seen of the parent.
func (c *pidContainers) of(procRoot string, pid, ppid int64) string {
	if data, alive := procFile(procRoot, pid, "cgroup"); alive {
		id := containerIDFromCgroup(data)
		c.remember(pid, id)
		return id
	}
	c.mu.Lock()
	id, ok := c.byID[pid]
	c.mu.Unlock()
	if ok {
		return id
	}
	if data, alive := procFile(procRoot, ppid, "cgroup"); alive {
		if id := containerIDFromCgroup(data); id != "" {
			c.remember(ppid, id)
			return id
		}
		return shimContainer(procRoot, ppid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[ppid]
}

// remember notes the container of a live process; a live host process
// forgets what an earlier process of the same PID was.
func (c *pidContainers) remember(pid int64, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == "" {
		delete(c.byID, pid)
		return
	}
	if len(c.byID) >= pidContainersMax {
		clear(c.byID)
	}
	c.byID[pid] = id
}

// procFile reads /proc/PID/name under procRoot; false for no such process.
func procFile(procRoot string, pid int64, name string) ([]byte, bool) {
	if pid <= 0 {
		return nil, false
	}
	data, err := os.ReadFile(procRoot + "/" + strconv.FormatInt(pid, 10) + "/" + name)
	return data, err == nil
}

// processExists reports whether pid is a live process under procRoot.
func processExists(procRoot string, pid int64) bool {
	_, err := os.Stat(procRoot + "/" + strconv.FormatInt(pid, 10))
	return err == nil
}

// shimContainer is the container a containerd shim runs, from its command
// line (`containerd-shim-runc-v2 -namespace moby -id <64 hex> ...`), ""
// when pid is not a shim. A process started by docker exec is the shim's
// child once runc has exited; when it exits before its cgroup is read,
// its parent is all that is left of it.
func shimContainer(procRoot string, pid int64) string {
	data, ok := procFile(procRoot, pid, "cmdline")
	if !ok {
		return ""
	}
	args := strings.Split(string(data), "\x00")
	if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
		return ""
	}
	for i := 1; i+1 < len(args); i++ {
		if id := args[i+1]; args[i] == "-id" && len(id) == 64 && isHex([]byte(id)) {
			return id
		}
	}
	return ""
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
