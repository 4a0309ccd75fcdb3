package record

import (
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
)

func TestParseLogLineHeader(t *testing.T) {
	cases := []struct {
		name, line string
		want       Header
		body       string
		err        bool
	}{
		{"raw syscall", `type=SYSCALL msg=audit(1795750621.280:2): arch=c000003e syscall=257`,
			Header{Type: auparse.AUDIT_SYSCALL, Sec: 1795750621, Msec: 280, Serial: 2}, "arch=c000003e syscall=257", false},
		{"eoe with trailing space", "type=EOE msg=audit(1795750621.280:2): \n",
			Header{Type: auparse.AUDIT_EOE, Sec: 1795750621, Msec: 280, Serial: 2}, "", false},
		{"node prefix", `node=web1 type=CWD msg=audit(1.001:4294967295): cwd="/"`,
			Header{Type: auparse.AUDIT_CWD, Sec: 1, Msec: 1, Serial: 4294967295}, `cwd="/"`, false},
		{"unknown numbered type", `type=UNKNOWN[1999] msg=audit(5.5:6): x=1`,
			Header{Type: 1999, Sec: 5, Msec: 5, Serial: 6}, "x=1", false},
		{"serial overflow", `type=CWD msg=audit(1.001:4294967296): cwd="/"`, Header{}, "", true},
		{"no msg", `type=CWD audit(1.001:4): cwd="/"`, Header{}, "", true},
		{"bad type", `type=NOPE msg=audit(1.001:4): x`, Header{}, "", true},
		{"truncated stamp", `type=CWD msg=audit(1.001`, Header{}, "", true},
		{"empty", "", Header{}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, body, err := ParseLogLine(c.line)
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if err == nil && (h != c.want || body != c.body) {
				t.Fatalf("got %+v %q, want %+v %q", h, body, c.want, c.body)
			}
		})
	}
}

func TestDecodeString(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"/etc/docker"`, "/etc/docker"},
		{"2F6574632F646F636B65722F646F636B7761726420636170207370616365", "/etc/docker/dockward cap space"},
		{"746F756368002F6574632F646F636B65722F646F636B776172642D636170", "touch /etc/docker/dockward-cap"},
		{"(null)", ""},
		{"(none)", ""},
	}
	for _, c := range cases {
		if got, ok := decodeString(c.in); !ok || got != c.want {
			t.Errorf("decodeString(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	for _, bad := range []string{"ABC", "ZZ", "2F6G"} {
		if _, ok := decodeString(bad); ok {
			t.Errorf("decodeString(%q) accepted a malformed value", bad)
		}
	}
}

func TestRelativeNames(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
		want string
	}{
		{"absolute", Event{CWD: "/tmp", Paths: []PathItem{{Name: "/etc/docker/x", NameType: "CREATE"}}}, "/etc/docker/x"},
		{"parent recorded", Event{CWD: "/tmp", Paths: []PathItem{{Name: "/etc/docker", NameType: "PARENT"},
			{Name: "x", NameType: "CREATE"}}}, "/etc/docker/x"},
		{"relative to cwd", Event{CWD: "/etc/docker", Paths: []PathItem{{Name: "x", NameType: "NORMAL"}}}, "/etc/docker/x"},
		{"relative to a directory fd", Event{CWD: "/", DirFD: true, Paths: []PathItem{{Name: "lower", NameType: "NORMAL"}}}, "lower"},
		// rm -r's unlinkat(dirfd, "leaf"): the kernel prints the parent's
		// name as the cwd, though the directory is the descriptor's.
		{"directory fd with a parent named as the cwd", Event{CWD: "/tmp", DirFD: true,
			Paths: []PathItem{{Name: "/tmp", NameType: "PARENT"}, {Name: "leaf", NameType: "DELETE"}}}, "leaf"},
	}
	for _, c := range cases {
		if got := c.ev.Path(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	var ev Event
	ev.syscallFields(`arch=c000003e syscall=257 a0=5 a1=0`)
	if !ev.DirFD {
		t.Error("openat with a directory fd not recognised")
	}
	ev = Event{}
	ev.syscallFields(`arch=c000003e syscall=257 a0=ffffff9c a1=0`)
	if ev.DirFD {
		t.Error("openat with AT_FDCWD taken as a directory fd")
	}
}
