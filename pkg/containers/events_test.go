package containers

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/internal/testenv"
)

func TestCursorSkipsReplayedEvents(t *testing.T) {
	var c cursor
	c.start(time.Unix(100, 0))
	if got := c.since(); got != "100.000000000" {
		t.Fatalf("since before any event = %q, want the start time", got)
	}
	ev := func(nano int64, id string) events.Message {
		return events.Message{Type: "container", Action: "create", Actor: events.Actor{ID: id}, TimeNano: nano}
	}
	steps := []struct {
		ev   events.Message
		seen bool
	}{
		{ev(100e9+5, "a"), false},
		{ev(100e9+5, "b"), false}, // same nanosecond, another event
		{ev(100e9+5, "a"), true},  // replayed
		{ev(100e9+4, "z"), false}, // stamped earlier but delivered later: not a replay
		{ev(100e9+4, "z"), true},
		{ev(100e9+6, "a"), false},
		{events.Message{Type: "container", Action: "die", Actor: events.Actor{ID: "x"}, Time: 101}, false},
		{ev(100e9+6, "a"), true},
	}
	for i, s := range steps {
		if got := c.seenBefore(s.ev); got != s.seen {
			t.Errorf("step %d: seenBefore = %v, want %v", i, got, s.seen)
		}
	}
	if got := c.since(); got != "96.000000000" {
		t.Errorf("since = %q, want the newest event minus the replay slack", got)
	}
	// The remembered keys stay bounded: old ones are pruned.
	for i := range 5000 {
		c.seenBefore(ev(200e9+int64(i)*int64(10*time.Millisecond), "p"))
	}
	if len(c.seen) > 2100 {
		t.Errorf("cursor remembers %d keys; old ones are not pruned", len(c.seen))
	}
}

// TestFakeEventsDuringOutageAreReplayedOnce: events dockerd buffered while
// the agent was cut off (an exec, which no inventory can reconstruct) are
// handled exactly once after the reconnect.
func TestFakeEventsDuringOutageAreReplayedOnce(t *testing.T) {
	f := newFakeEngine(t)
	c := fakeContainer(hexID(50), "svc")
	c.State.Status = "running"
	f.put(c)
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.run(t)
	testenv.WaitFor(t, 5*time.Second, "subscription", f.subscribed)
	before := f.emit(events.ContainerEventType, "start", c.ID, nil)
	testenv.WaitFor(t, 5*time.Second, "start handled", func() bool {
		return testutil.ToFloat64(h.src.m.events.WithLabelValues("container", "start")) == 1
	})

	f.stop()
	testenv.WaitFor(t, 5*time.Second, "docker_up 0", func() bool { return testutil.ToFloat64(h.src.m.up) == 0 })
	no := false
	f.mu.Lock()
	f.execs["x1"] = container.ExecInspectResponse{ID: "x1", ContainerID: c.ID,
		ProcessConfig: &container.ExecProcessConfig{Entrypoint: "cat", Arguments: []string{"/etc/shadow"}, Privileged: &no, User: "root"}}
	f.mu.Unlock()
	attrs := map[string]string{"execID": "x1"}
	f.emit(events.ContainerEventType, "exec_create: cat /etc/shadow", c.ID, attrs)
	f.emit(events.ContainerEventType, "exec_start: cat /etc/shadow", c.ID, attrs)
	f.start()
	testenv.WaitFor(t, 5*time.Second, "docker_up 1", func() bool { return testutil.ToFloat64(h.src.m.up) == 1 })
	testenv.WaitFor(t, 5*time.Second, "exec replayed", func() bool {
		return testutil.ToFloat64(h.src.m.execs.WithLabelValues("false", "true")) == 1
	})
	time.Sleep(100 * time.Millisecond)
	if got := testutil.ToFloat64(h.src.m.events.WithLabelValues("container", "start")); got != 1 {
		t.Errorf("the start event at the resume point (%d) was handled %v times, want once", before.TimeNano, got)
	}
	if got := testutil.ToFloat64(h.src.m.execs.WithLabelValues("false", "true")); got != 1 {
		t.Errorf("exec counted %v times", got)
	}
	if got := testutil.ToFloat64(h.src.m.reconnects); got != 1 {
		t.Errorf("reconnects = %v", got)
	}
}

// FuzzEventLabels: whatever dockerd (or a peer posing as it) sends, the
// event counter's labels stay within the known, bounded sets.
func FuzzEventLabels(f *testing.F) {
	f.Add("container", "exec_start: sh -c 'x'")
	f.Add("daemon", "reload")
	f.Add("weird\ntype", "health_status: unhealthy")
	f.Add("", ":")
	f.Fuzz(func(t *testing.T, typ, action string) {
		gotType, gotAction := eventLabels(typ, action)
		if gotType != "other" && !knownEventTypes[gotType] {
			t.Fatalf("type label %q is unbounded", gotType)
		}
		if gotAction != "other" && !knownActions[gotAction] {
			t.Fatalf("action label %q is unbounded", gotAction)
		}
	})
}
