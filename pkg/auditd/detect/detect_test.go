package detect

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dockward/dockward/pkg/auditd/reassembly"
	"github.com/dockward/dockward/pkg/auditd/record"
)

var update = flag.Bool("update", false, "rewrite deploy/audit/50-dockward-escape.rules")

// DeployRulesFile is the rules file shipped for /etc/audit/rules.d.
var deployRulesFile = filepath.Join("..", "..", "..", "deploy", "audit", "50-dockward-escape.rules")

// The shipped rules file is what the code installs on x86_64: one source.
func TestDeployRulesFileIsGenerated(t *testing.T) {
	abis, err := ABIs("amd64")
	if err != nil {
		t.Fatal(err)
	}
	want := RulesFile(abis)
	if *update {
		if err := os.WriteFile(deployRulesFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(deployRulesFile)
	if err != nil {
		t.Fatalf("reading %s (go test ./pkg/auditd/detect -run DeployRules -update writes it): %v", deployRulesFile, err)
	}
	if string(got) != want {
		t.Errorf("%s differs from the rules the code builds; rewrite it with go test ./pkg/auditd/detect -run DeployRules -update\nwant:\n%s", deployRulesFile, want)
	}
}

// recordedEvents are the events of testdata/records.log: records this
// kernel wrote while a container made every attempt (and the runtime
// started it), plus a host ptrace and a host core_pattern write, under
// rules keyed per detection (dockward_<detection>), as an auditd's rules
// with keys of their own would be.
func recordedEvents(t *testing.T) []record.Event {
	t.Helper()
	data, err := os.ReadFile("testdata/records.log")
	if err != nil {
		t.Fatal(err)
	}
	var evs []record.Event
	st, err := reassembly.New(reassembly.Options{Counters: reassembly.Counters{Records: prometheus.NewCounter(prometheus.CounterOpts{Name: "r"}),
		ParseErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "p"}), SequenceGaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "g"}),
		LateRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "l"})},
		OnEvent: func(ev *record.Event) {
			c := *ev
			c.Paths = append([]record.PathItem(nil), ev.Paths...)
			evs = append(evs, c)
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		st.PushLine(l)
	}
	st.Close()
	if len(evs) < 30 {
		t.Fatalf("only %d events in testdata/records.log", len(evs))
	}
	return evs
}

// Every recorded event matches the detection its rule was keyed for, and
// the same with any other key: events are matched by syscall and file.
func TestMatchRecordedEvents(t *testing.T) {
	m := NewMatcher(Catalogue())
	seen := map[string]bool{}
	for _, ev := range recordedEvents(t) {
		name := strings.TrimPrefix(ev.Key, "dockward_")
		got, ok := m.Match(&ev)
		if !ok || got.Detection.Name != name {
			t.Errorf("serial %d (%s by %s): matched %v %q, want %s", ev.Serial, ev.Syscall, ev.Comm, ok, got.Detection.Name, name)
			continue
		}
		seen[name+"/"+ev.Arch] = true
		if want := map[bool]Outcome{true: Success, false: Failure}[ev.Success]; got.Outcome != want {
			t.Errorf("serial %d: outcome %s, want %s", ev.Serial, got.Outcome, want)
		}
		foreign := ev
		foreign.Key = "auditd_rule"
		if again, ok := m.Match(&foreign); !ok || again.Detection.Name != name || again.Detail != got.Detail {
			t.Errorf("serial %d (%s %s) under another rule's key: matched %v %+v", ev.Serial, ev.Syscall, ev.Path(), ok, again)
		}
	}
	for _, d := range Catalogue() {
		if !seen[d.Name+"/x86_64"] && d.Name != "kernel_module_unload" {
			t.Errorf("testdata/records.log has no x86_64 event of %s", d.Name)
		}
	}
	if !seen["namespace_change/i386"] {
		t.Error("testdata/records.log has no 32-bit event")
	}
}

// The details of a call name what matters, and calls outside a
// detection's arguments are not it.
func TestMatchDetailsAndArguments(t *testing.T) {
	m := NewMatcher(Catalogue())
	ev := func(syscall string, args ...string) *record.Event {
		e := &record.Event{Syscall: syscall, Arch: "x86_64", Key: "other", Success: true}
		for i, a := range args {
			*[]*string{&e.A0, &e.A1, &e.A2, &e.A3}[i] = a
		}
		return e
	}
	for _, c := range []struct {
		ev     *record.Event
		name   string
		detail string
	}{
		{ev("ptrace", "10", "4d2"), "ptrace_attach", "PTRACE_ATTACH pid 1234"},
		{ev("ptrace", "4206", "1"), "ptrace_attach", "PTRACE_SEIZE pid 1"},
		{ev("ptrace", "5", "1"), "ptrace_attach", "PTRACE_POKEDATA pid 1"},
		{ev("bpf", "5", "7ffd", "80"), "bpf_prog_load", "BPF_PROG_LOAD"},
		{ev("unshare", "10020000"), "namespace_change", "CLONE_NEWNS|CLONE_NEWUSER"},
		{ev("unshare", "0"), "namespace_change", "none"},
		{ev("setns", "3", "0"), "namespace_change", "any namespace"},
		{ev("setns", "3", "40000000"), "namespace_change", "CLONE_NEWNET"},
		{ev("mount", "1", "2", "3", "1021"), "mount_in_container", "MS_RDONLY|MS_REMOUNT|MS_BIND"},
		{ev("mount", "1", "2", "3", "400"), "mount_in_container", "0x400"},
		{ev("sys_kexec_load"), "kexec_load", ""},
	} {
		got, ok := m.Match(c.ev)
		if !ok || got.Detection.Name != c.name || got.Detail != c.detail {
			t.Errorf("%s %s: matched %v %q %q, want %s %q", c.ev.Syscall, c.ev.A0, ok, got.Detection.Name, got.Detail, c.name, c.detail)
		}
	}
	for _, e := range []*record.Event{ev("ptrace", "0"), ev("ptrace", "2"), ev("ptrace", "100000010"), ev("ptrace"),
		ev("bpf", "0"), ev("bpf", "1"), ev("openat", "ffffff9c", "1", "0"), ev("getppid")} {
		if got, ok := m.Match(e); ok {
			t.Errorf("%s %s %s matched %s", e.Syscall, e.A0, e.A2, got.Detection.Name)
		}
	}
	read := ev("openat", "ffffff9c", "7ffd", "0") // O_RDONLY
	read.Paths = []record.PathItem{{Name: "/sys/fs/cgroup/memory/release_agent", NameType: "NORMAL"}}
	if _, ok := m.Match(read); ok {
		t.Error("reading release_agent matched")
	}
	write := ev("openat", "ffffff9c", "7ffd", "241") // O_WRONLY|O_CREAT|O_TRUNC
	write.Paths = read.Paths
	if got, ok := m.Match(write); !ok || got.Detection.Name != "release_agent_write" {
		t.Errorf("writing release_agent under another key: %v %+v", ok, got)
	}
	write.Paths = []record.PathItem{{Name: "/proc/sys/kernel/core_pattern", NameType: "NORMAL"}}
	if got, ok := m.Match(write); !ok || got.Detection.Name != "core_pattern_write" {
		t.Errorf("writing core_pattern under another key: %v %+v", ok, got)
	}
}
