package containers

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/internal/testenv"
)

// TestFakeInventoryConcurrencyIsBounded inventories more containers than
// InventoryConcurrency and checks that no more inspects than that are ever in
// flight, while every container is still judged.
func TestFakeInventoryConcurrencyIsBounded(t *testing.T) {
	const containers, limit = 40, 3
	f := newFakeEngine(t)
	for i := range containers {
		f.put(fakeContainer(hexID(100+i), "c"))
	}
	var inFlight, peak atomic.Int32
	f.override = func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/v1.") && strings.Contains(r.URL.Path, "/containers/") && strings.HasSuffix(r.URL.Path, "/json") &&
			!strings.HasSuffix(r.URL.Path, "/containers/json") {
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond) // long enough for the workers to overlap
			inFlight.Add(-1)
		}
		return false
	}
	f.start()
	cfg := fastConfig()
	cfg.InventoryConcurrency = limit
	h := newHarness(t, NewEngine(f.client()), cfg, nil)
	h.run(t)
	for i := range containers {
		if h.findingCount(hexID(100+i)) == 0 {
			t.Fatalf("container %d not judged at inventory", i)
		}
	}
	if got := peak.Load(); got > limit || got < 2 {
		t.Errorf("peak inspects in flight = %d, want between 2 and the limit %d", got, limit)
	}
}

// TestFakeReinventoryReconcilesAfterReconnect changes containers while the
// engine is away without any event telling of it (the engine's event
// buffer does not have them): only the re-inventory after the reconnect can
// see that one container went and another came.
func TestFakeReinventoryReconcilesAfterReconnect(t *testing.T) {
	f := newFakeEngine(t)
	gone := fakeContainer(hexID(200), "gone")
	gone.HostConfig.Privileged = true
	f.put(gone)
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.run(t)
	if h.rules(gone.ID)["container.privileged"] != "critical" {
		t.Fatalf("precondition: %s not judged at inventory", gone.ID[:12])
	}

	f.stop()
	testenv.WaitFor(t, 5*time.Second, "docker_up 0", func() bool { return testutil.ToFloat64(h.src.m.up) == 0 })
	f.remove(gone.ID)
	came := fakeContainer(hexID(201), "came")
	came.HostConfig.Privileged = true
	f.put(came)
	f.start()

	testenv.WaitFor(t, 5*time.Second, "reconciled after reconnect", func() bool {
		_, known := h.src.NameOf(gone.ID)
		// Connected again once images and the swarm are judged too.
		return h.findingCount(gone.ID) == 0 && !known && h.rules(came.ID)["container.privileged"] == "critical" &&
			testutil.ToFloat64(h.src.m.up) == 1
	})
	if got := testutil.ToFloat64(h.src.m.reconnects); got != 1 {
		t.Errorf("reconnects = %v, want 1", got)
	}
	if got := h.src.stateCounts()["created"]; got != 1 {
		t.Errorf("dockward_containers{state=created} = %d after reconciling, want 1", got)
	}
}

// TestEngineStoppedContainerJudged runs a container to completion: an
// exited container is judged like any other, and dockward_containers tells
// its state apart from a created one.
func TestEngineStoppedContainerJudged(t *testing.T) {
	h, p, _ := startBehindProxy(t)
	id := dockerCreate(t, "--network", "none")
	// The image's command is sleep 600; run the container to its end at once.
	testenv.Run(t, "docker", "start", id)
	testenv.Run(t, "docker", "kill", id)
	testenv.Run(t, "docker", "wait", id)
	created := dockerCreate(t, "--network", "none")
	testenv.WaitFor(t, 10*time.Second, "exited and created containers judged", func() bool {
		return h.rules(id)["container.no_memory_limit"] == "medium" && h.rules(created)["container.no_memory_limit"] == "medium"
	})
	testenv.WaitFor(t, 10*time.Second, "the exited state", func() bool {
		counts := h.src.stateCounts()
		return counts["exited"] >= 1 && counts["created"] >= 1
	})
	m := h.metricsText(t)
	if !strings.Contains(m, `dockward_containers{state="exited"} `) || strings.Contains(m, `dockward_containers{state="exited"} 0`+"\n") {
		t.Errorf("/metrics does not count the exited container:\n%s", m)
	}
	p.check(t)
}
