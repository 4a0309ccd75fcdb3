package dockerinfo

import (
	"testing"

	"github.com/moby/moby/api/types/system"
)

// SecurityOptions as dockerd 20.10 to 28 report them.
func TestSecurityOption(t *testing.T) {
	info := Parse(&system.Info{SecurityOptions: []string{
		"name=apparmor", "name=seccomp,profile=builtin", "name=userns", "name=cgroupns",
		"name=seccomp,profile=unconfined", // a later entry of the same name is ignored
		"profile=orphan",                  // no name: not an option
	}})
	for name, want := range map[string]map[string]string{
		"apparmor": {"name": "apparmor"},
		"seccomp":  {"name": "seccomp", "profile": "builtin"},
		"userns":   {"name": "userns"},
	} {
		got, ok := info.SecurityOption(name)
		if !ok || len(got) != len(want) {
			t.Errorf("SecurityOption(%q) = %v, %v; want %v", name, got, ok, want)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("SecurityOption(%q)[%q] = %q, want %q", name, k, got[k], v)
			}
		}
	}
	for _, name := range []string{"no-new-privileges", "selinux", "", "orphan"} {
		if kv, ok := info.SecurityOption(name); ok {
			t.Errorf("SecurityOption(%q) = %v, want absent", name, kv)
		}
	}
	if Parse(nil) != nil {
		t.Error("Parse(nil) must be nil: no /info")
	}
}

// FuzzParse: any SecurityOptions list parses without a panic, and every
// option it reports carries its own name.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"name=seccomp,profile=default", "name=userns", ",,=,name", "name=a=b,c"} {
		f.Add(seed, "name=apparmor")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		info := Parse(&system.Info{SecurityOptions: []string{a, b}})
		for name, kv := range info.security {
			if kv["name"] != name {
				t.Fatalf("option %q filed under %q", kv["name"], name)
			}
		}
	})
}
