package hostfs

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
)

const sampleMountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
45 22 254:16 / /var/lib/docker rw,relatime shared:27 - ext4 /dev/vdb rw
46 22 0:44 / /mnt/with\040space rw - tmpfs tmp\040fs rw
47 22 0:45 /sub /srv/bind rw master:3 - ext4 /dev/vdc rw
`

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo([]byte(sampleMountinfo))
	if err != nil || len(ms) != 4 {
		t.Fatalf("%d mounts, %v", len(ms), err)
	}
	if m := ms[2]; m.Point != "/mnt/with space" || m.Source != "tmp fs" || m.FSType != "tmpfs" {
		t.Errorf("escaped line: %+v", m)
	}
	if m := ms[3]; m.Root != "/sub" || m.Point != "/srv/bind" {
		t.Errorf("optional fields: %+v", m)
	}
	for _, bad := range []string{"1 2 3", "22 1 254:0 / / rw shared:1 ext4 /dev/vda rw"} {
		if _, err := ParseMountinfo([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v, want an error naming line 1", bad, err)
		}
	}
}

func TestIsMountPointThroughTheRoot(t *testing.T) {
	r := fixture(t, map[string]string{
		"proc/1/mountinfo":     sampleMountinfo,
		"var/lib/docker/.keep": "",
		"data/docker/.keep":    "",
		"srv/bind/.keep":       "",
		"var/lib/dockerlink":   "->/var/lib/docker",
	})
	for p, want := range map[string]bool{"/var/lib/docker": true, "/var/lib/dockerlink": true, "/data/docker": false, "/srv/bind": true} {
		if _, got, err := r.IsMountPoint(p); err != nil || got != want {
			t.Errorf("%s: mount point %v (%v), want %v", p, got, err, want)
		}
	}
	if _, _, err := r.IsMountPoint("/nope"); err == nil {
		t.Error("a missing path is not an error")
	}
}

// On this host, the answer agrees with util-linux's mountpoint(1).
func TestIsMountPointMatchesMountpointCommand(t *testing.T) {
	testenv.RequireRoot(t) // /proc/1/mountinfo
	mountpoint := testenv.RequireCommand(t, "mountpoint")
	for _, p := range []string{"/", "/proc", "/etc", "/var/lib/docker", "/usr"} {
		_, got, err := Root{}.IsMountPoint(p)
		if err != nil {
			continue
		}
		if want := exec.Command(mountpoint, "-q", p).Run() == nil; got != want {
			t.Errorf("%s: mount point %v, mountpoint(1) says %v", p, got, want)
		}
	}
}

func TestParseMembers(t *testing.T) {
	group := "root:x:0:\ndocker:x:105:alice, bob\ndocker:x:106:mallory\n#staff:x:50:eve\n"
	passwd := "root:x:0:0::/root:/bin/sh\ncarol:x:1002:105::/home/carol:/bin/sh\nbroken\n"
	m := ParseMembers(105, []byte(group), []byte(passwd))
	if m.Name != "docker" || strings.Join(m.Listed, ",") != "alice,bob" || strings.Join(m.Primary, ",") != "carol" ||
		strings.Join(m.All(), ",") != "alice,bob,carol" {
		t.Errorf("%+v", m)
	}
	if m := ParseMembers(999, []byte(group), []byte(passwd)); m.Name != "999" || len(m.All()) != 0 {
		t.Errorf("unknown group: %+v", m)
	}
}

// FuzzParseMountinfo: any input parses or is an error naming a line; never a panic.
func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(sampleMountinfo))
	f.Add([]byte("1 2 3 4 5 6 - x\n\\\\\\0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseMountinfo(data)
		if err == nil {
			for _, m := range ms {
				if m.FSType == "" {
					t.Fatalf("a mount without a type: %+v", m)
				}
			}
		}
		_ = ParseMembers(105, data, data).All()
	})
}
