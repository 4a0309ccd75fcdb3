package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
)

// fakeSource runs the behaviour its test gives it.
type fakeSource struct {
	name string
	run  func(ctx context.Context, ready func()) error
}

func (f *fakeSource) Name() string                                { return f.name }
func (f *fakeSource) Run(ctx context.Context, ready func()) error { return f.run(ctx, ready) }
func (f *fakeSource) Scan(context.Context) error                  { return nil }

func shortBackoff(t *testing.T) {
	oldMin, oldMax := minBackoff, maxBackoff
	minBackoff, maxBackoff = 5*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { minBackoff, maxBackoff = oldMin, oldMax })
}

func testWiring() (*wiring, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return &wiring{log: zap.NewNop(), reg: reg, store: findings.NewStore(nil)}, reg
}

// A source whose Run fails is rebuilt and rerun with backoff; the metrics it
// registers in its builder survive the rebuild (no duplicate registration).
func TestSupervisorRestartsFailingSource(t *testing.T) {
	shortBackoff(t)
	w, reg := testWiring()
	var builds, runs atomic.Int32
	spec := sourceSpec{name: "fake", build: func(w *wiring, _ Config) (findings.Source, error) {
		builds.Add(1)
		w.reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_fake_total", Help: "test"}))
		return &fakeSource{name: "fake", run: func(ctx context.Context, ready func()) error {
			switch runs.Add(1) {
			case 1:
				return errors.New("input unreachable")
			case 2:
				panic("bug in the source")
			}
			ready()
			<-ctx.Done()
			return nil
		}}, nil
	}}
	m := newAgentMetrics()
	s := &supervisor{spec: spec, w: w, ready: newReadiness(), metrics: m, log: zap.NewNop()}
	startSupervisor(context.Background(), s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ready.waitReady(ctx); err != nil {
		t.Fatalf("source never became ready after two failures: %v", err)
	}
	if got := testutil.ToFloat64(m.sourceRestarts.WithLabelValues("fake")); got != 2 {
		t.Errorf("restarts = %v, want 2 (an error and a panic)", got)
	}
	if got := testutil.ToFloat64(m.sourceReady.WithLabelValues("fake")); got != 1 {
		t.Errorf("dockward_source_ready = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "dockward_fake_total"); err != nil || n != 1 {
		t.Errorf("the source's metric is registered %d times (%v), want once", n, err)
	}
	if err := s.stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if builds.Load() != 3 {
		t.Errorf("builds = %d, want 3", builds.Load())
	}
	if n, _ := testutil.GatherAndCount(reg, "dockward_fake_total"); n != 0 {
		t.Error("a stopped source's metrics must be unregistered")
	}
}

func TestSupervisorStopTimesOutOnStuckSource(t *testing.T) {
	w, _ := testWiring()
	release := make(chan struct{})
	defer close(release)
	spec := sourceSpec{name: "stuck", build: func(*wiring, Config) (findings.Source, error) {
		return &fakeSource{name: "stuck", run: func(ctx context.Context, ready func()) error {
			ready()
			<-release // ignores ctx
			return nil
		}}, nil
	}}
	s := &supervisor{spec: spec, w: w, ready: newReadiness(), metrics: newAgentMetrics(), log: zap.NewNop()}
	startSupervisor(context.Background(), s)
	waitFor(t, 2*time.Second, "ready", func() bool { return s.ready.isReady("stuck") })
	start := time.Now()
	if err := s.stop(50 * time.Millisecond); err == nil {
		t.Error("stop returned nil for a source that ignores cancellation")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %s, want about its 50ms bound", d)
	}
}

// A builder that returns (nil, nil) is a source not built yet: the agent
// runs without it and is ready.
func TestSupervisorUnavailableSourceIsNotAwaited(t *testing.T) {
	w, _ := testWiring()
	spec := sourceSpec{name: "later", build: func(*wiring, Config) (findings.Source, error) { return nil, nil }}
	s := &supervisor{spec: spec, w: w, ready: newReadiness(), metrics: newAgentMetrics(), log: zap.NewNop()}
	startSupervisor(context.Background(), s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.ready.waitReady(ctx); err != nil {
		t.Fatalf("an unavailable source blocks readiness: %v", err)
	}
}

func TestReadyzReportsPendingSources(t *testing.T) {
	r := newReadiness()
	r.set("containers", true)
	r.set("audit", false)
	h, err := newHandler(options{telemetryPath: "/metrics"}, prometheus.NewRegistry(), findings.NewStore(nil), r, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, pathReady, nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "audit") {
		t.Errorf("/readyz = %d %q, want 503 naming audit", rec.Code, rec.Body.String())
	}
	r.set("audit", true)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, pathReady, nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/readyz = %d once all are ready, want 200", rec.Code)
	}
}

// Reload restarts exactly the sources whose section changed, stops disabled
// ones (resolving what they left open), and applies policy changes.
func TestReloadRestartsChangedSections(t *testing.T) {
	shortBackoff(t)
	var mu sync.Mutex
	starts := map[string]int{}
	fake := func(name string) func(*wiring, Config) (findings.Source, error) {
		return func(w *wiring, _ Config) (findings.Source, error) {
			return &fakeSource{name: name, run: func(ctx context.Context, ready func()) error {
				mu.Lock()
				starts[name]++
				mu.Unlock()
				w.store.SourceSink(name).Set("daemon", []findings.Finding{
					findings.New("daemon.live_restore_off", findings.Subject{Kind: findings.KindDaemon, Name: "dockerd"}, "m")})
				ready()
				<-ctx.Done()
				return nil
			}}, nil
		}
	}
	old := sourceSpecs
	t.Cleanup(func() { sourceSpecs = old })
	sourceSpecs = []sourceSpec{
		{name: "containers", build: fake("containers"), section: func(c Config) any { return c.Containers },
			enabled: func(c Config) bool { return c.Containers.Enabled }},
		{name: "host", build: fake("host"), section: func(c Config) any { return c.Host },
			enabled: func(c Config) bool { return c.Host.Enabled }},
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "c.yml", "audit:\n  enabled: false\n")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := testWiring()
	a := &agent{o: options{configFile: path}, log: zap.NewNop(), w: w, store: w.store, metrics: newAgentMetrics(),
		ready: newReadiness(), cfg: cfg, running: map[string]*supervisor{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, spec := range sourceSpecs {
		a.start(ctx, spec, cfg)
	}
	waitFor(t, 2*time.Second, "both sources ready", func() bool { p, _ := a.ready.notReady(); return len(p) == 0 && len(a.store.Open()) == 2 })

	// Change only the host section, disable containers, and override a rule.
	writeFile(t, dir, "c.yml", "audit:\n  enabled: false\ncontainers:\n  enabled: false\nhost:\n  debounce: 1s\n"+
		"rules:\n  daemon.live_restore_off:\n    severity: info\n")
	a.reload(ctx)
	waitFor(t, 2*time.Second, "host restarted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return starts["host"] == 2 && a.ready.isReady("host")
	})
	mu.Lock()
	if starts["containers"] != 1 {
		t.Errorf("containers started %d times, want 1 (it was disabled, not restarted)", starts["containers"])
	}
	mu.Unlock()
	if _, ok := a.running["containers"]; ok {
		t.Error("disabled source still running")
	}
	open := a.store.Open()
	if len(open) != 1 || open[0].Severity != findings.Info {
		t.Errorf("open = %+v, want only host's finding, at the overridden severity info", open)
	}
	if got := testutil.ToFloat64(a.metrics.lastReloadOK); got != 1 {
		t.Errorf("last reload successful = %v", got)
	}
	// An unchanged file restarts nothing.
	a.reload(ctx)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if starts["host"] != 2 {
		t.Errorf("an unchanged reload restarted host (%d starts)", starts["host"])
	}
}

// A rebuilt source replaces its daemon-reload listener instead of adding one.
func TestRebuildReplacesDaemonReloadListeners(t *testing.T) {
	w, _ := testWiring()
	var calls atomic.Int32
	spec := sourceSpec{name: "host", build: func(w *wiring, _ Config) (findings.Source, error) {
		w.OnDaemonReload(func() { calls.Add(1) })
		return &fakeSource{name: "host"}, nil
	}}
	for i := 0; i < 3; i++ {
		if _, _, err := buildSource(w, spec, Config{}); err != nil {
			t.Fatal(err)
		}
	}
	w.DaemonReloaded()
	if got := calls.Load(); got != 1 {
		t.Errorf("after 3 builds one daemon reload called %d listeners, want 1", got)
	}
}
