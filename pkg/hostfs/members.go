package hostfs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// GroupMembers is who belongs to one host group: the users its /etc/group
// line lists, and the users whose primary group it is in /etc/passwd.
type GroupMembers struct {
	Name    string
	GID     uint32
	Listed  []string // /etc/group's member list
	Primary []string // /etc/passwd users whose group is this one
}

// All is every member once, sorted.
func (m GroupMembers) All() []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range append(append([]string{}, m.Listed...), m.Primary...) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// Members reads the host's /etc/group and /etc/passwd for the members of
// the group with id gid.
func (r Root) Members(gid uint32) (GroupMembers, error) {
	group, err := r.ReadFile("/etc/group", maxIDFile)
	if err != nil {
		return GroupMembers{}, fmt.Errorf("reading the host's /etc/group: %w", err)
	}
	passwd, err := r.ReadFile("/etc/passwd", maxIDFile)
	if err != nil {
		return GroupMembers{}, fmt.Errorf("reading the host's /etc/passwd: %w", err)
	}
	return ParseMembers(gid, group, passwd), nil
}

// ParseMembers finds the members of group gid in a group and a passwd file.
// The group is named by its first line; malformed lines are skipped.
func ParseMembers(gid uint32, group, passwd []byte) GroupMembers {
	m := GroupMembers{GID: gid}
	eachRecord(group, func(f []string) {
		if len(f) < 4 || m.Name != "" || !isID(f[2], gid) {
			return
		}
		m.Name = f[0]
		for _, u := range strings.Split(f[3], ",") {
			if u = strings.TrimSpace(u); u != "" {
				m.Listed = append(m.Listed, u)
			}
		}
	})
	eachRecord(passwd, func(f []string) {
		if len(f) >= 4 && f[0] != "" && isID(f[3], gid) {
			m.Primary = append(m.Primary, f[0])
		}
	})
	if m.Name == "" {
		m.Name = strconv.FormatUint(uint64(gid), 10)
	}
	return m
}

func eachRecord(data []byte, fn func(fields []string)) {
	sc := lineScanner(data)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			fn(strings.Split(line, ":"))
		}
	}
}

func isID(field string, id uint32) bool {
	n, err := strconv.ParseUint(field, 10, 32)
	return err == nil && uint32(n) == id
}
