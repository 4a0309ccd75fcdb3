package containers

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
)

func TestFakeInventoryEventsAndStates(t *testing.T) {
	f := newFakeEngine(t)
	running := fakeContainer(hexID(1), "web")
	running.State.Status = "running"
	f.put(running)
	stale := hexID(2) // judged once, then gone before the agent starts
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.src.sink.Set(containerScope(stale), Judge(fakeContainer(stale, "old"), HostFacts{}))
	h.run(t)
	if h.findingCount(stale) != 0 {
		t.Fatalf("inventory kept findings of a container that no longer exists")
	}
	if h.findingCount(running.ID) == 0 {
		t.Fatalf("inventory did not judge the running container")
	}
	if got := testutil.ToFloat64(h.src.m.up); got != 1 {
		t.Fatalf("dockward_docker_up = %v, want 1", got)
	}
	// A created container is judged at create, before it ever runs.
	created := fakeContainer(hexID(3), "never-started")
	created.HostConfig.Privileged = true
	f.put(created)
	f.emit(events.ContainerEventType, "create", created.ID, nil)
	testenv.WaitFor(t, 5*time.Second, "privileged finding", func() bool {
		return h.rules(created.ID)["container.privileged"] == "critical"
	})
	counts := h.src.stateCounts()
	if counts["created"] != 1 || counts["running"] != 1 {
		t.Fatalf("state counts %v, want one created and one running", counts)
	}
	if name, ok := h.src.NameOf(created.ID[:12]); !ok || name != "never-started" {
		t.Fatalf("NameOf(short) = %q, %v", name, ok)
	}
	// Update resolves, rename re-labels, destroy removes.
	created.HostConfig.Privileged = false
	created.Name = "/renamed"
	f.put(created)
	f.emit(events.ContainerEventType, "rename", created.ID, nil)
	testenv.WaitFor(t, 5*time.Second, "rename judged", func() bool {
		name, _ := h.src.NameOf(created.ID)
		return name == "renamed" && h.rules(created.ID)["container.privileged"] == ""
	})
	f.remove(created.ID)
	f.emit(events.ContainerEventType, "destroy", created.ID, nil)
	testenv.WaitFor(t, 5*time.Second, "destroy", func() bool { return h.findingCount(created.ID) == 0 })
	if _, ok := h.src.NameOf(created.ID); ok {
		t.Fatalf("destroyed container still has a name")
	}
	if strings.Contains(h.metricsText(t), created.ID[:12]) {
		t.Fatalf("a series of the destroyed container is left in /metrics")
	}
	if got := testutil.ToFloat64(h.src.m.events.WithLabelValues("container", "rename")); got != 1 {
		t.Fatalf("rename events = %v", got)
	}
}

func TestFakeMalformedEventIsCountedAndStreamGoesOn(t *testing.T) {
	f := newFakeEngine(t)
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.run(t)
	testenv.WaitFor(t, 5*time.Second, "subscription", f.subscribed)

	// Well-formed JSON that is not a usable event: skipped in-stream.
	f.emitRaw(`{"Type":"container","Action":"create","time":1}` + "\n")
	testenv.WaitFor(t, 5*time.Second, "semantic malformed count", func() bool { return testutil.ToFloat64(h.src.m.malformed) == 1 })

	a := fakeContainer(hexID(10), "a")
	f.put(a)
	f.emit(events.ContainerEventType, "create", a.ID, nil)
	testenv.WaitFor(t, 5*time.Second, "a judged", func() bool { return h.findingCount(a.ID) > 0 })
	// Bytes that do not decode at all end the client's decoder: the source
	// resumes from the last event without declaring an outage.
	f.emitRaw("{\"Type\": \"container\", \"Action\": \x00garbage\n")
	testenv.WaitFor(t, 5*time.Second, "syntax malformed count", func() bool { return testutil.ToFloat64(h.src.m.malformed) == 2 })
	b := fakeContainer(hexID(11), "b")
	f.put(b)
	testenv.WaitFor(t, 5*time.Second, "resubscription", f.subscribed)
	f.emit(events.ContainerEventType, "create", b.ID, nil)
	testenv.WaitFor(t, 5*time.Second, "b judged after the malformed event", func() bool { return h.findingCount(b.ID) > 0 })

	creates := func() float64 { return testutil.ToFloat64(h.src.m.events.WithLabelValues("container", "create")) }
	testenv.WaitFor(t, 5*time.Second, "b's create event", func() bool { return creates() >= 3 })
	time.Sleep(100 * time.Millisecond)
	if got := creates(); got != 3 {
		t.Fatalf("create events counted %v times, want 3 (a, b and the malformed one; none replayed twice)", got)
	}
	if got := testutil.ToFloat64(h.src.m.reconnects); got != 0 {
		t.Fatalf("a malformed event counted as a reconnect: %v", got)
	}
	if n := h.logs.count("malformed docker event skipped"); n != 2 {
		t.Fatalf("malformed events logged %d times, want 2", n)
	}
	if n := h.logs.count("docker unreachable"); n != 0 {
		t.Fatalf("a malformed event was logged as an outage")
	}
	h.logs.lines(t)
}

func TestFakeDaemonUnreachableAtStart(t *testing.T) {
	f := newFakeEngine(t) // not listening yet
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.run(t) // must become ready while retrying
	if got := testutil.ToFloat64(h.src.m.up); got != 0 {
		t.Fatalf("dockward_docker_up = %v while down", got)
	}
	if !strings.Contains(h.metricsText(t), "dockward_docker_up 0") {
		t.Fatalf("/metrics does not serve dockward_docker_up 0")
	}
	time.Sleep(400 * time.Millisecond) // several retries at the 100ms cap
	if n := h.logs.count("docker unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once", n)
	}
	// Up and ready, but it has judged nothing: no check of its rules
	// passes for want of findings.
	expectUnjudged(t, h.report())
	c := fakeContainer(hexID(20), "late")
	f.put(c)
	f.start()
	testenv.WaitFor(t, 5*time.Second, "connection after start", func() bool { return testutil.ToFloat64(h.src.m.up) == 1 })
	testenv.WaitFor(t, 5*time.Second, "inventory after connect", func() bool { return h.findingCount(c.ID) > 0 })
	if got := testutil.ToFloat64(h.src.m.reconnects); got != 1 {
		t.Fatalf("reconnects = %v, want 1", got)
	}
	if n := h.logs.count("docker connection restored"); n != 1 {
		t.Fatalf("restore logged %d times", n)
	}
	for _, r := range h.report() {
		if (r.ID == "5.5" || r.ID == "4.6") && r.Status != findings.StatusPass || r.ID == "7.3" && r.Note != "swarm mode is not enabled on this engine" {
			t.Errorf("after the inventory, %s: %s %q", r.ID, r.Status, r.Note)
		}
	}
}

// report is the compliance report over the source's findings and
// observations, the source counted as judged.
func (h *harness) report() []findings.CheckResult {
	return findings.Report(findings.ComplianceInput{Open: h.store.Open(), Judged: func(string) bool { return true },
		Observations: h.src.Observations()}).Results()
}

// expectUnjudged checks that every check of the source's rules is manual,
// saying that nothing was read.
func expectUnjudged(t *testing.T, results []findings.CheckResult) {
	t.Helper()
	n := 0
	for _, r := range results {
		ours := false
		for _, id := range r.Rules {
			rule, _ := findings.LookupRule(id)
			ours = ours || rule.Source == Name
		}
		if !ours {
			continue
		}
		n++
		if r.Status != findings.StatusManual || !strings.Contains(r.Note, "has not answered") {
			t.Errorf("%s before any inventory: %s %q, want manual", r.ID, r.Status, r.Note)
		}
	}
	if want := len(containerChecks) + len(imageChecks) + len(swarmChecks); n != want || n < 30 {
		t.Errorf("%d checks of the containers source's rules, want %d (container, image and swarm checks)", n, want)
	}
}

func TestFakeExecAndDaemonReload(t *testing.T) {
	f := newFakeEngine(t)
	c := fakeContainer(hexID(30), "target")
	c.State.Status = "running"
	f.put(c)
	f.start()
	var reloads atomic.Int32
	h := newHarness(t, NewEngine(f.client()), fastConfig(), func(*dockerinfo.Info) { reloads.Add(1) })
	h.run(t)
	testenv.WaitFor(t, 5*time.Second, "subscription", f.subscribed)

	yes, no := true, false
	f.mu.Lock()
	f.execs["e1"] = container.ExecInspectResponse{ID: "e1", ContainerID: c.ID, ProcessConfig: &container.ExecProcessConfig{
		Entrypoint: "sh", Arguments: []string{"-c", "id"}, Privileged: &yes, User: "root"}}
	f.execs["e2"] = container.ExecInspectResponse{ID: "e2", ContainerID: c.ID, ProcessConfig: &container.ExecProcessConfig{
		Entrypoint: "ls", Privileged: &no}}
	f.mu.Unlock()
	attrs := func(id string) map[string]string {
		return map[string]string{"execID": id, "name": "target", "image": "fake:1"}
	}
	f.emit(events.ContainerEventType, "exec_create: sh -c id", c.ID, attrs("e1"))
	f.emit(events.ContainerEventType, "exec_start: sh -c id", c.ID, attrs("e1"))
	f.emit(events.ContainerEventType, "exec_start: ls", c.ID, attrs("e2"))
	f.emit(events.ContainerEventType, "exec_start: gone", c.ID, attrs("e3")) // dockerd forgot it
	testenv.WaitFor(t, 5*time.Second, "exec counts", func() bool {
		// e2 has no --user: it runs as the container's own user, root.
		return testutil.ToFloat64(h.src.m.execs.WithLabelValues("true", "true")) == 1 &&
			testutil.ToFloat64(h.src.m.execs.WithLabelValues("false", "true")) == 1 &&
			testutil.ToFloat64(h.src.m.execs.WithLabelValues("unknown", "unknown")) == 1
	})
	if got := testutil.ToFloat64(h.src.m.events.WithLabelValues("container", "exec_start")); got != 3 {
		t.Fatalf("exec_start events = %v (the command suffix must not be a label)", got)
	}
	var sawPrivileged bool
	for _, l := range h.logs.lines(t) {
		if l["msg"] == "docker exec started" && l["privileged"] == "true" {
			sawPrivileged = true
			ctr, _ := l["container"].(map[string]any)
			if l["user"] != "root" || l["command"] != "sh -c id" || ctr["name"] != "target" || ctr["id"] != c.ID[:12] || l["level"] != "warn" ||
				l["root"] != "true" || l["tty"] != "false" {
				t.Fatalf("privileged exec log line lacks user, command or container: %v", l)
			}
		}
	}
	if !sawPrivileged {
		t.Fatalf("no log line for the privileged exec:\n%s", h.logs.String())
	}

	f.mu.Lock()
	f.security = append(f.security, "name=no-new-privileges")
	f.mu.Unlock()
	if h.rules(c.ID)["container.no_new_privileges"] == "" {
		t.Fatalf("precondition: no_new_privileges open before the daemon default")
	}
	f.emit(events.DaemonEventType, "reload", "daemon-id", nil)
	testenv.WaitFor(t, 5*time.Second, "reload callback", func() bool { return reloads.Load() == 1 })
	if h.rules(c.ID)["container.no_new_privileges"] != "" {
		t.Fatalf("daemon default no-new-privileges after reload did not re-judge containers")
	}
}

// A daemon reload reads GET /info once, and the reload listener gets what
// was read, so the host source need not fetch it again.
func TestDaemonReloadHandsOverInfo(t *testing.T) {
	f := newFakeEngine(t)
	f.start()
	handed := make(chan *dockerinfo.Info, 1)
	h := newHarness(t, NewEngine(f.client()), fastConfig(), func(info *dockerinfo.Info) { handed <- info })
	h.run(t)
	testenv.WaitFor(t, 5*time.Second, "subscription", f.subscribed)
	infoRequests := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for _, r := range f.requests {
			if strings.HasSuffix(r, "/info") {
				n++
			}
		}
		return n
	}
	before := infoRequests()
	f.mu.Lock()
	f.security = append(f.security, "name=no-new-privileges")
	f.mu.Unlock()
	f.emit(events.DaemonEventType, "reload", "daemon-id", nil)
	var info *dockerinfo.Info
	select {
	case info = <-handed:
	case <-time.After(5 * time.Second):
		t.Fatal("the reload listener was not called")
	}
	if info == nil {
		t.Fatal("the reload listener got no /info although it was read")
	}
	if _, ok := info.SecurityOption("no-new-privileges"); !ok {
		t.Errorf("the handed /info is not the one read after the reload: %v", info.SecurityOptions)
	}
	if got := infoRequests() - before; got != 1 {
		t.Errorf("a daemon reload made %d GET /info requests, want 1", got)
	}
}
