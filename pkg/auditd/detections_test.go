package auditd

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/findings"
)

// recordsLog holds records this kernel wrote under dockward's detection
// rules while a container made every escape attempt (see the detect
// package's tests).
const recordsLog = "detect/testdata/records.log"

const testContainerID = "b25e30a110e749f63c2dd7ef5ed9665cdd8e3f01b2971731cd5ae98712ce38e4"

// detectingSource is a source with its detections, its pipeline, and a
// fake /proc in which the processes of recordsLog that ran in the
// container (busybox, the payload and runc's init stage) have its cgroup.
func detectingSource(t *testing.T, cfg Config) (*Pipeline, *Source, *observer.ObservedLogs, *[]Detected) {
	t.Helper()
	proc := t.TempDir()
	data, err := os.ReadFile(recordsLog)
	if err != nil {
		t.Fatal(err)
	}
	inContainer := regexp.MustCompile(` pid=(\d+) .*exe="(/bin/busybox|/escape|/escape32|/)"`)
	for _, m := range inContainer.FindAllStringSubmatch(string(data), -1) {
		os.MkdirAll(filepath.Join(proc, m[1]), 0o755)
		os.WriteFile(filepath.Join(proc, m[1], "cgroup"), []byte("4:memory:/docker/"+testContainerID+"\n"), 0o644)
	}
	core, logs := observer.New(zap.DebugLevel)
	store := findings.NewStore(nil)
	s, err := New(cfg, Deps{Log: zap.New(core), Registerer: prometheus.NewRegistry(), Sink: store.SourceSink(Name),
		ContainerName:  func(id string) (string, bool) { return "escaper", id == testContainerID },
		ContainerImage: func(id string) (string, bool) { return "dockward-test-escape:latest", id == testContainerID }})
	if err != nil {
		t.Fatal(err)
	}
	var got []Detected
	s.onDetection = func(_ *record.Event, d Detected) { got = append(got, d) }
	p, err := s.newPipeline(s.newControl(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	p.procRoot = proc
	return p, s, logs, &got
}

// The recorded attempts are detections of the container, the runtime's
// own work is routine, and the host's ptrace and core_pattern write are
// host detections.
func TestRecordedDetections(t *testing.T) {
	p, s, logs, got := detectingSource(t, DefaultConfig())
	feedFile(t, p, recordsLog)
	count := map[string]int{}
	for _, d := range *got {
		count[d.Detection.Name+"/"+string(d.Origin)+"/"+string(d.Outcome)]++
		if d.Origin == "container" && (d.Actor.Exe == "/" || d.Actor.ContainerName != "escaper" || d.Image != "dockward-test-escape:latest") {
			t.Errorf("container detection %+v", d)
		}
	}
	want := map[string]int{"namespace_change/container/success": 3, "mount_in_container/container/success": 3,
		"ptrace_attach/container/success": 1, "kernel_module_load/container/failure": 2, "bpf_prog_load/container/failure": 1,
		"open_by_handle_at/container/failure": 1, "kexec_load/container/failure": 1, "release_agent_write/container/success": 1,
		"ptrace_attach/host/failure": 1, "core_pattern_write/host/success": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("detections = %v\nwant         %v", count, want)
	}
	m := s.detM
	if n := testutil.ToFloat64(m.routine.WithLabelValues("mount_in_container", routineExpectedActor)); n != 4 {
		t.Errorf("runc's init stage mounts counted as routine: %v, want the 4 of the records", n)
	}
	if n := testutil.ToFloat64(m.routine.WithLabelValues("mount_in_container", routineHostProcess)); n < 5 {
		t.Errorf("dockerd and fuse-overlayfs mounts on the host counted as routine: %v", n)
	}
	if n := testutil.ToFloat64(m.detected.WithLabelValues("kernel_module_load", "failure", "container")); n != 2 {
		t.Errorf("dockward_runtime_detections_total{kernel_module_load,failure,container} = %v", n)
	}
	lines := logs.FilterMessage("runtime detection").All()
	if len(lines) != len(*got) {
		t.Fatalf("%d log lines for %d detections", len(lines), len(*got))
	}
	for _, l := range lines {
		if l.Level != zap.ErrorLevel {
			t.Errorf("line at %s", l.Level)
		}
		c := l.ContextMap()
		ctr, _ := c["container"].(map[string]any)
		actor, _ := c["actor"].(map[string]any)
		if c["detection"] == "kernel_module_load" && (ctr["id"] != testContainerID[:12] || ctr["name"] != "escaper" ||
			ctr["image"] != "dockward-test-escape:latest" || c["outcome"] != "failure" || actor["exe"] != "/bin/busybox" ||
			c["falco_rule"] != "Linux Kernel Module Injection Detected" || c["origin"] != "container") {
			t.Errorf("insmod line = %v", c)
		}
		if c["detection"] == "core_pattern_write" && (ctr["id"] != "host" || c["path"] != "/proc/sys/kernel/core_pattern") {
			t.Errorf("core_pattern line = %v", c)
		}
	}
}

// Configured expected actors replace a detection's default list only.
func TestExpectedActorsFromConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ExpectedActors = map[string][]string{"mount_in_container": {"dockerd"}, "core_pattern_write": {"bash"}}
	p, s, _, got := detectingSource(t, cfg)
	feedFile(t, p, recordsLog)
	var runcInit, corePattern, busybox int
	for _, d := range *got {
		switch {
		case d.Actor.Exe == "/":
			runcInit++
		case d.Detection.Name == "core_pattern_write":
			corePattern++
		case d.Actor.Exe == "/bin/busybox":
			busybox++
		}
	}
	if runcInit != 4 || corePattern != 0 || busybox == 0 {
		t.Errorf("with runc no longer expected for mounts: %d runc init detections (want its 4 mounts), %d core_pattern (bash is expected now), %d busybox",
			runcInit, corePattern, busybox)
	}
	if n := testutil.ToFloat64(s.detM.routine.WithLabelValues("namespace_change", routineExpectedActor)); n == 0 {
		t.Error("namespace_change kept its default actors, runc's init stage among them, but counted none")
	}
}

// A burst of detections is counted whole and logged up to the limit.
func TestDetectionLinesRateLimited(t *testing.T) {
	p, s, logs, _ := detectingSource(t, DefaultConfig())
	now := time.Unix(1000, 0)
	p.limit.now = func() time.Time { return now }
	for i := 1; i <= 130; i++ {
		p.PushLine(fmt.Sprintf(`type=SYSCALL msg=audit(40.000:%d): arch=c000003e syscall=101 success=no exit=-3 a0=10 a1=3d0900 a2=0 a3=0 items=0 ppid=1 pid=999999 auid=0 uid=0 comm="gdb" exe="/usr/bin/gdb" key="dockward_escape"`, i))
		p.PushLine(fmt.Sprintf(`type=PROCTITLE msg=audit(40.000:%d): proctitle="gdb"`, i))
	}
	p.Close()
	if n := testutil.ToFloat64(s.detM.detected.WithLabelValues("ptrace_attach", "failure", "host")); n != 130 {
		t.Errorf("counted %v, want 130", n)
	}
	if n, sup := logs.FilterMessage("runtime detection").Len(), testutil.ToFloat64(s.m.suppressedCounter("detection:ptrace_attach")); n != logBurst || sup != 30 {
		t.Errorf("%d lines and %v suppressed, want %d and 30", n, sup, logBurst)
	}
}

func TestDetectionConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ExpectedActors = map[string][]string{"no_such": {"x"}, "ptrace_attach": {"bin/gdb", "kernel:modprobe"}}
	cfg.Watches = []WatchConfig{{Path: "/etc/x", Key: "dockward_mine", Kind: KindConfig}}
	err := cfg.Validate()
	for _, want := range []string{`unknown detection "no_such"`, `audit.expected_actors.ptrace_attach: "bin/gdb"`, `audit.watches[0].key: "dockward_mine"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q in it", err, want)
		}
	}
	if strings.Contains(err.Error(), "modprobe") {
		t.Errorf("kernel:modprobe rejected: %v", err)
	}
}

// Detection series are known from the start: every detection, outcome and
// origin it can have, and every routine reason.
func TestDetectionSeriesKnownAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	if _, err := New(cfg, Deps{Registerer: reg, Sink: findings.NewStore(nil).SourceSink(Name)}); err != nil {
		t.Fatal(err)
	}
	// 7 detections for containers and hosts, 3 for containers only.
	if n := testutil.CollectAndCount(reg, "dockward_runtime_detections_total"); n != 7*4+3*2 {
		t.Errorf("%d detection series, want %d", n, 7*4+3*2)
	}
	if n := testutil.CollectAndCount(reg, "dockward_runtime_routine_events_total"); n != 10+3 {
		t.Errorf("%d routine series, want 13", n)
	}
	cfg.Detections = false
	reg = prometheus.NewRegistry()
	if _, err := New(cfg, Deps{Registerer: reg, Sink: findings.NewStore(nil).SourceSink(Name)}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "dockward_runtime_detections_total"); n != 0 {
		t.Errorf("detections off, yet %d series", n)
	}
}

// A process is attributed from its cgroup while it lives, from what was
// seen of it once it exited, and else from its parent: a docker exec'd
// shell that ran one command may be gone with it.
func TestPIDContainers(t *testing.T) {
	proc := t.TempDir()
	ctr := "4:memory:/docker/" + testContainerID + "\n"
	write := func(pid, name, data string) {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		os.WriteFile(filepath.Join(proc, pid, name), []byte(data), 0o644)
	}
	write("10", "cgroup", ctr)
	write("11", "cgroup", "4:memory:/\n")
	write("12", "cgroup", "4:memory:/\n")
	write("12", "cmdline", "/usr/bin/containerd-shim-runc-v2\x00-namespace\x00moby\x00-id\x00"+testContainerID+"\x00-address\x00x\x00")
	c := newPIDContainers()
	for _, s := range []struct {
		pid, ppid int64
		want      string
		step      string
	}{
		{10, 1, testContainerID, "alive in a container"},
		{11, 1, "", "alive on the host"},
		{20, 10, testContainerID, "gone, its parent in a container"},
		{21, 12, testContainerID, "gone, its parent the container's shim"},
		{22, 11, "", "gone, its parent a host process"},
	} {
		if got := c.of(proc, s.pid, s.ppid); got != s.want {
			t.Errorf("%s: %q, want %q", s.step, got, s.want)
		}
	}
	os.RemoveAll(filepath.Join(proc, "10"))
	if got := c.of(proc, 10, 99); got != testContainerID {
		t.Errorf("gone after it was seen in the container: %q", got)
	}
	if got := c.of(proc, 30, 10); got != testContainerID {
		t.Errorf("gone, its parent gone after it was seen in the container: %q", got)
	}
	write("10", "cgroup", "4:memory:/\n") // the PID reused on the host
	if got := c.of(proc, 10, 1); got != "" {
		t.Errorf("a live host process with a container process's old PID: %q", got)
	}
	os.RemoveAll(filepath.Join(proc, "10"))
	if got := c.of(proc, 10, 99); got != "" {
		t.Errorf("that host process, gone: %q (the container's entry must be forgotten)", got)
	}
}
