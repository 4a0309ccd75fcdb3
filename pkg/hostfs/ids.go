package hostfs

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// maxIDFile bounds how much of /etc/passwd or /etc/group is read.
const maxIDFile = 4 << 20

// Names maps the names in one passwd or group file to their ids and back.
// root is always 0, even when the file cannot be read.
type Names struct {
	ids   map[string]uint32
	names map[uint32]string
}

// IDs are the host's users and groups: its /etc/passwd and /etc/group, not
// this process's (in a container they differ).
type IDs struct{ Users, Groups Names }

// LoadIDs reads the host's /etc/passwd and /etc/group. A file that cannot
// be read leaves only root in its table.
func (r Root) LoadIDs() IDs { return IDs{Users: r.Users(), Groups: r.Groups()} }

// Users reads the host's /etc/passwd.
func (r Root) Users() Names { return r.names("/etc/passwd") }

// Groups reads the host's /etc/group.
func (r Root) Groups() Names { return r.names("/etc/group") }

func (r Root) names(file string) Names {
	data, err := r.ReadFile(file, maxIDFile)
	if err != nil {
		data = nil
	}
	return ParseNames(data)
}

// ParseNames reads a passwd or group file (name:password:id:...). Comments
// and malformed lines are skipped; the first line naming a name or an id
// wins, as in the C library's lookups.
func ParseNames(data []byte) Names {
	n := Names{ids: map[string]uint32{"root": 0}, names: map[uint32]string{0: "root"}}
	sc := lineScanner(data)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 4)
		if len(parts) < 3 || parts[0] == "" || strings.HasPrefix(parts[0], "#") {
			continue
		}
		id, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := n.ids[parts[0]]; !dup {
			n.ids[parts[0]] = uint32(id)
		}
		if _, dup := n.names[uint32(id)]; !dup {
			n.names[uint32(id)] = parts[0]
		}
	}
	return n
}

// lineScanner reads the lines of a passwd or group file. Its buffer starts
// small and grows to 1 MiB for a long line: the files are read on every
// rescan, and a buffer sized for the longest line up front would be most
// of a rescan's memory.
func lineScanner(data []byte) *bufio.Scanner {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	return sc
}

// ID resolves a name, or a number given as a decimal string.
func (n Names) ID(nameOrID string) (uint32, bool) {
	if id, ok := n.ids[nameOrID]; ok {
		return id, true
	}
	if id, err := strconv.ParseUint(nameOrID, 10, 32); err == nil {
		return uint32(id), true
	}
	return 0, false
}

// Name returns the name of id, and whether the file has one.
func (n Names) Name(id uint32) (string, bool) {
	name, ok := n.names[id]
	return name, ok
}

// NameOr returns the name of id, or the id itself in decimal when the file
// has no name for it.
func (n Names) NameOr(id uint32) string {
	if name, ok := n.names[id]; ok {
		return name
	}
	return strconv.FormatUint(uint64(id), 10)
}
