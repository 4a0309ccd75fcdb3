package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/dockerinfo"
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

// startFake starts a supervisor of spec over w and r and returns it with
// its metrics.
func startFake(w *wiring, spec sourceSpec, r *readiness) (*supervisor, *agentMetrics) {
	m := newAgentMetrics()
	s := &supervisor{spec: spec, w: w, ready: r, metrics: m, log: zap.NewNop()}
	startSupervisor(context.Background(), s)
	return s, m
}

// A source whose Run fails is rebuilt and rerun with backoff; the metrics it
// registers in its builder survive the rebuild (no duplicate registration).
func TestSupervisorRestartsFailingSource(t *testing.T) {
	shortBackoff(t)
	w, reg := testWiring()
	var builds, runs atomic.Int32
	spec := sourceSpec{name: "fake", build: func(_ *wiring, _ Config, b sourceBase) (findings.Source, error) {
		builds.Add(1)
		b.reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_fake_total", Help: "test"}))
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
	s, m := startFake(w, spec, newReadiness())
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
	spec := sourceSpec{name: "stuck", build: func(*wiring, Config, sourceBase) (findings.Source, error) {
		return &fakeSource{name: "stuck", run: func(ctx context.Context, ready func()) error {
			ready()
			<-release // ignores ctx
			return nil
		}}, nil
	}}
	s := &supervisor{spec: spec, w: w, ready: newReadiness(), metrics: newAgentMetrics(), log: zap.NewNop()}
	startSupervisor(context.Background(), s)
	testenv.WaitFor(t, 2*time.Second, "ready", func() bool { return s.ready.isReady("stuck") })
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
	spec := sourceSpec{name: "later", build: func(*wiring, Config, sourceBase) (findings.Source, error) { return nil, nil }}
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
	if code, body := readyz(t, r); code != http.StatusServiceUnavailable || !strings.Contains(body, "audit") {
		t.Errorf("/readyz = %d %q, want 503 naming audit", code, body)
	}
	r.set("audit", true)
	if code, _ := readyz(t, r); code != http.StatusOK {
		t.Errorf("/readyz = %d once all are ready, want 200", code)
	}
}

// Reload restarts exactly the sources whose section changed, stops disabled
// ones (resolving what they left open), and applies policy changes.
func TestReloadRestartsChangedSections(t *testing.T) {
	shortBackoff(t)
	var mu sync.Mutex
	starts := map[string]int{}
	fake := func(name string) func(*wiring, Config, sourceBase) (findings.Source, error) {
		return func(w *wiring, _ Config, _ sourceBase) (findings.Source, error) {
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
	testenv.WaitFor(t, 2*time.Second, "both sources ready", func() bool { p, _ := a.ready.notReady(); return len(p) == 0 && len(a.store.Open()) == 2 })

	// Change only the host section, disable containers, and override a rule.
	writeFile(t, dir, "c.yml", "audit:\n  enabled: false\ncontainers:\n  enabled: false\nhost:\n  debounce: 1s\n"+
		"rules:\n  daemon.live_restore_off:\n    severity: info\n")
	a.reload(ctx)
	testenv.WaitFor(t, 2*time.Second, "host restarted", func() bool {
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
	spec := sourceSpec{name: "host", build: func(w *wiring, _ Config, _ sourceBase) (findings.Source, error) {
		w.OnDaemonReload(func(*dockerinfo.Info) { calls.Add(1) })
		return &fakeSource{name: "host"}, nil
	}}
	for i := 0; i < 3; i++ {
		if _, _, err := buildSource(w, spec, Config{}); err != nil {
			t.Fatal(err)
		}
	}
	w.DaemonReloaded(nil)
	if got := calls.Load(); got != 1 {
		t.Errorf("after 3 builds one daemon reload called %d listeners, want 1", got)
	}
}

// readyz serves one GET /readyz from a handler over r.
func readyz(t *testing.T, r *readiness) (int, string) {
	t.Helper()
	h, err := newHandler(options{telemetryPath: "/metrics"}, prometheus.NewRegistry(), findings.NewStore(nil), r,
		func() findings.Compliance { return findings.Report(findings.ComplianceInput{}) }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, pathReady, nil))
	return rec.Code, rec.Body.String()
}

// A source that keeps failing is named in /readyz with its last error and
// how often it failed, dockward_source_up is 0 while it fails, and both
// recover once a restarted run is ready.
func TestReadyzNamesFailingSourceAndLastError(t *testing.T) {
	shortBackoff(t)
	w, _ := testWiring()
	var heal atomic.Bool
	var runs atomic.Int32
	spec := sourceSpec{name: "audit", build: func(*wiring, Config, sourceBase) (findings.Source, error) {
		return &fakeSource{name: "audit", run: func(ctx context.Context, ready func()) error {
			n := runs.Add(1)
			if !heal.Load() {
				return fmt.Errorf("adding the rule for /usr/sbin/dockerd (run %d): %w", n, errors.New("no such file or directory"))
			}
			ready()
			<-ctx.Done()
			return nil
		}}, nil
	}}
	r := newReadiness()
	r.set("containers", true)
	if code, body := readyz(t, r); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("before the source starts /readyz = %d %q", code, body)
	}
	s, m := startFake(w, spec, r)
	up := m.sourceUp.WithLabelValues("audit")
	defer func() { _ = s.stop(time.Second) }()
	testenv.WaitFor(t, 2*time.Second, "three failed runs", func() bool { return runs.Load() >= 3 })
	code, body := readyz(t, r)
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: waiting for audit\n") {
		t.Errorf("/readyz = %d %q, want 503 waiting for audit", code, body)
	}
	if !strings.Contains(body, "audit: failing (") || !strings.Contains(body, "no such file or directory") ||
		!strings.Contains(body, "adding the rule for /usr/sbin/dockerd") {
		t.Errorf("/readyz body %q does not name the failing source and its last error", body)
	}
	if strings.Contains(body, "containers") {
		t.Errorf("/readyz body %q names a ready source", body)
	}
	if got := testutil.ToFloat64(up); got != 0 {
		t.Errorf("dockward_source_up{source=audit} = %v while failing, want 0", got)
	}
	heal.Store(true)
	testenv.WaitFor(t, 2*time.Second, "the source to recover", func() bool { return r.isReady("audit") })
	if code, body := readyz(t, r); code != http.StatusOK || body != "ready\n" {
		t.Errorf("after recovery /readyz = %d %q, want 200 ready", code, body)
	}
	if got := testutil.ToFloat64(up); got != 1 {
		t.Errorf("dockward_source_up{source=audit} = %v after recovery, want 1", got)
	}
}

// A source still starting is pending but not failing: up stays 1 and
// /readyz says it is starting, with no error.
func TestReadyzStartingSourceIsNotFailing(t *testing.T) {
	w, _ := testWiring()
	release := make(chan struct{})
	spec := sourceSpec{name: "host", build: func(*wiring, Config, sourceBase) (findings.Source, error) {
		return &fakeSource{name: "host", run: func(ctx context.Context, ready func()) error {
			select {
			case <-release:
				ready()
			case <-ctx.Done():
				return nil
			}
			<-ctx.Done()
			return nil
		}}, nil
	}}
	s, m := startFake(w, spec, newReadiness())
	defer func() { _ = s.stop(time.Second) }()
	code, body := readyz(t, s.ready)
	if code != http.StatusServiceUnavailable || body != "not ready: waiting for host\nhost: starting\n" {
		t.Errorf("/readyz = %d %q, want 503 with host starting", code, body)
	}
	if got := testutil.ToFloat64(m.sourceUp.WithLabelValues("host")); got != 1 {
		t.Errorf("dockward_source_up{source=host} = %v while starting, want 1", got)
	}
	close(release)
	testenv.WaitFor(t, 2*time.Second, "host ready", func() bool { return s.ready.isReady("host") })
}

// The real agent: an audit source in file mode whose log path runs through
// a regular file fails (ENOTDIR is not "not there yet"), so /readyz and
// /metrics say so; once the path is fixed the restarted source is ready.
func TestAgentReportsFailingSource(t *testing.T) {
	dir := t.TempDir()
	blocker := writeFile(t, dir, "logs", "not a directory\n")
	logFile := filepath.Join(blocker, "audit.log")
	cfg := writeFile(t, dir, "c.yml", fmt.Sprintf("containers:\n  enabled: false\nhost:\n  enabled: false\n"+
		"audit:\n  mode: file\n  log_file: %s\n", logFile))
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg)
	base := "http://" + a.Addr
	testenv.WaitFor(t, 10*time.Second, "/readyz to name the failing audit source", func() bool {
		resp, body := getUntil(t, http.DefaultClient, base+pathReady, time.Now().Add(5*time.Second))
		return resp.StatusCode == http.StatusServiceUnavailable && contains(string(body), "audit: failing (") &&
			contains(string(body), "not a directory") && contains(string(body), logFile)
	})
	_, metrics := getUntil(t, http.DefaultClient, base+"/metrics", time.Now().Add(5*time.Second))
	if !contains(string(metrics), `dockward_source_up{source="audit"} 0`) {
		t.Errorf("while failing, /metrics lacks dockward_source_up{source=\"audit\"} 0:\n%s", grepLines(string(metrics), "dockward_source"))
	}
	if contains(string(metrics), `dockward_source_up{source="host"}`) {
		t.Errorf("a disabled source has a dockward_source_up series:\n%s", grepLines(string(metrics), "dockward_source_up"))
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, blocker, "audit.log", "")
	testenv.WaitFor(t, 20*time.Second, "the restarted source to be ready", func() bool {
		resp, _ := getUntil(t, http.DefaultClient, base+pathReady, time.Now().Add(5*time.Second))
		return resp.StatusCode == http.StatusOK
	})
	_, metrics = getUntil(t, http.DefaultClient, base+"/metrics", time.Now().Add(5*time.Second))
	if !contains(string(metrics), `dockward_source_up{source="audit"} 1`) {
		t.Errorf("after recovery, /metrics lacks dockward_source_up{source=\"audit\"} 1:\n%s", grepLines(string(metrics), "dockward_source"))
	}
}

// Every source's config section key is its package's Name, the name its
// spec, sink scope and log lines use, and every section has a spec.
func TestConfigSectionsAreSourceNames(t *testing.T) {
	typ := reflect.TypeOf(Config{})
	sections := map[string]any{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.Struct {
			continue // a top-level setting (rootfs), not a section
		}
		if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" {
			sections[tag] = reflect.ValueOf(defaultConfig()).Field(i).Interface()
		}
	}
	// vulns is the one section a source (images) reads besides its own.
	if _, ok := sections[vulnsSection]; !ok {
		t.Errorf("Config has no %s section", vulnsSection)
	}
	delete(sections, vulnsSection)
	if len(sections) != len(sourceSpecs) {
		t.Errorf("Config has sections %v, the agent has %d source specs", sections, len(sourceSpecs))
	}
	for _, spec := range sourceSpecs {
		got, ok := sections[spec.name]
		if !ok {
			t.Errorf("source %q has no config section of that name", spec.name)
			continue
		}
		if !reflect.DeepEqual(got, spec.section(defaultConfig())) {
			t.Errorf("config section %q is not the section spec %q reads", spec.name, spec.name)
		}
	}
	// The catalogue names the source that judges each rule by the same name.
	for _, r := range findings.Rules() {
		if _, ok := sections[r.Source]; !ok {
			t.Errorf("rule %s is judged by source %q, which the agent does not know", r.ID, r.Source)
		}
	}
}
