package hostfs

import "testing"

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
