package hostfs

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseNames(t *testing.T) {
	n := ParseNames([]byte("# a comment\nalice:x:1000:1000::/home/alice:/bin/sh\n" +
		"bob:x:1000:1000::/home/bob:/bin/sh\nalice:x:1001:1001::/:/bin/sh\nbroken:x:notanumber:0::/:\n" +
		":x:7:7::/:\nshort:x\ndocker:x:999:\n"))
	ids := map[string]struct {
		id uint32
		ok bool
	}{
		"root": {0, true}, "alice": {1000, true}, "bob": {1000, true}, "docker": {999, true},
		"4242": {4242, true}, "broken": {0, false}, "short": {0, false}, "": {0, false},
	}
	for name, want := range ids {
		if id, ok := n.ID(name); id != want.id || ok != want.ok {
			t.Errorf("ID(%q) = %d, %v; want %d, %v", name, id, ok, want.id, want.ok)
		}
	}
	names := map[uint32]string{0: "root", 1000: "alice", 1001: "alice", 999: "docker", 7: "7", 4242: "4242"}
	for id, want := range names {
		if got := n.NameOr(id); got != want {
			t.Errorf("NameOr(%d) = %q, want %q (the first line naming an id wins)", id, got, want)
		}
	}
	if _, ok := n.Name(4242); ok {
		t.Error("Name(4242) found a name the file does not have")
	}
}

func TestUsersAndGroupsComeFromTheRoot(t *testing.T) {
	r := fixture(t, map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"/etc/group":  "root:x:0:\ndocker:x:999:alice\n",
	})
	ids := r.LoadIDs()
	if name, ok := ids.Users.Name(1000); !ok || name != "alice" {
		t.Errorf("user 1000 = %q, %v", name, ok)
	}
	if gid, ok := ids.Groups.ID("docker"); !ok || gid != 999 {
		t.Errorf("group docker = %d, %v", gid, ok)
	}
	// An unreadable file leaves root, and numbers still resolve.
	empty := fixture(t, nil).LoadIDs()
	if id, ok := empty.Users.ID("root"); !ok || id != 0 {
		t.Error("root missing without a passwd file")
	}
	if _, ok := empty.Groups.ID("docker"); ok {
		t.Error("docker group found without a group file")
	}
}

// FuzzParseNames: no passwd or group file may panic the parser, and every
// name it keeps resolves back to an id it keeps.
func FuzzParseNames(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/sh\n"))
	f.Add([]byte("a:b:c\n::::\n#x:y:1\nz:z:4294967296:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := ParseNames(data)
		for id, name := range n.names {
			if _, ok := n.ID(name); !ok {
				t.Fatalf("name %q of id %d does not resolve", name, id)
			}
		}
	})
}

// A group line far longer than the scanner's first buffer (a docker group
// of thousands of directory users) is read whole, and so are the lines
// after it.
func TestLongGroupLine(t *testing.T) {
	users := make([]string, 20000)
	for i := range users {
		users[i] = fmt.Sprintf("user%05d", i)
	}
	group := []byte("docker:x:999:" + strings.Join(users, ",") + "\nops:x:1000:\n")
	passwd := []byte("root:x:0:0::/root:/bin/sh\nsvc:x:1001:999::/:/bin/sh\n")
	m := ParseMembers(999, group, passwd)
	if m.Name != "docker" || len(m.Listed) != len(users) || m.Listed[len(users)-1] != "user19999" {
		t.Errorf("members: name %q, %d listed, want docker and %d", m.Name, len(m.Listed), len(users))
	}
	if len(m.Primary) != 1 || m.Primary[0] != "svc" {
		t.Errorf("primary members = %v, want [svc]", m.Primary)
	}
	if id, ok := ParseNames(group).ID("ops"); !ok || id != 1000 {
		t.Errorf("the line after the long one: ops = %d, %v", id, ok)
	}
}
