package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/auditd"
	"github.com/dockward/dockward/pkg/containers"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
	"github.com/dockward/dockward/pkg/images"
	"github.com/dockward/dockward/pkg/watcher"
)

// sourceSpec describes one source: its config section and how to build it.
type sourceSpec struct {
	// name is the source package's Name constant. It is the config section
	// key, the name in /readyz and metrics, the `source` log field and the
	// source's store scope: it comes from the package so they cannot drift.
	name    string
	build   func(*wiring, Config, sourceBase) (findings.Source, error)
	section func(Config) any
	enabled func(Config) bool
}

// sourceBase is what every source gets from the agent, all derived from its
// spec's name: the Log, Registerer and Sink its package's Deps start with.
type sourceBase struct {
	log  *zap.Logger
	reg  prometheus.Registerer
	sink findings.Sink
	host hostfs.Root // the one view of the host's files, from the top-level rootfs
}

// sourceSpecs lists every source the agent knows. A builder returning
// (nil, nil) means the source is not available in this build; the agent runs
// without it.
var sourceSpecs = []sourceSpec{
	{name: containers.Name, build: buildContainers,
		section: func(c Config) any { return c.Containers }, enabled: func(c Config) bool { return c.Containers.Enabled }},
	{name: auditd.Name, build: buildAuditd,
		section: func(c Config) any { return c.Audit }, enabled: func(c Config) bool { return c.Audit.Enabled }},
	{name: watcher.Name, build: buildWatcher,
		section: func(c Config) any { return c.Host }, enabled: func(c Config) bool { return c.Host.Enabled }},
	{name: images.Name, build: buildImages,
		section: func(c Config) any { return imagesSection(c) }, enabled: func(c Config) bool { return c.Images.Enabled }},
}

func sourceNames() []string {
	out := make([]string, len(sourceSpecs))
	for i, s := range sourceSpecs {
		out[i] = s.name
	}
	return out
}

// buildSource builds one source with a registerer that remembers what the
// source registered, so that a rebuild (reload, restart) can unregister it
// first instead of failing on duplicate metrics. buildMu serialises builds
// because the daemon-reload listeners a builder registers are keyed by the
// source being built.
func buildSource(w *wiring, spec sourceSpec, cfg Config) (findings.Source, *trackingRegisterer, error) {
	w.buildMu.Lock()
	defer w.buildMu.Unlock()
	w.startBuild(spec.name)
	tr := &trackingRegisterer{inner: w.reg}
	src, err := spec.build(w, cfg, sourceBase{log: w.sourceLog(spec.name), reg: tr, sink: w.store.SourceSink(spec.name),
		host: cfg.hostRoot()})
	if err != nil || src == nil {
		tr.unregisterAll()
		if err != nil {
			return nil, nil, fmt.Errorf("building the %s source: %w", spec.name, err)
		}
		return nil, nil, nil
	}
	return src, tr, nil
}

// trackingRegisterer records what a source registers.
type trackingRegisterer struct {
	inner prometheus.Registerer
	mu    sync.Mutex
	cs    []prometheus.Collector
}

func (t *trackingRegisterer) Register(c prometheus.Collector) error {
	if err := t.inner.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.cs = append(t.cs, c)
	t.mu.Unlock()
	return nil
}

func (t *trackingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *trackingRegisterer) Unregister(c prometheus.Collector) bool {
	t.mu.Lock()
	for i, x := range t.cs {
		if x == c {
			t.cs = append(t.cs[:i], t.cs[i+1:]...)
			break
		}
	}
	t.mu.Unlock()
	return t.inner.Unregister(c)
}

func (t *trackingRegisterer) unregisterAll() {
	if t == nil {
		return
	}
	t.mu.Lock()
	cs := t.cs
	t.cs = nil
	t.mu.Unlock()
	for _, c := range cs {
		t.inner.Unregister(c)
	}
}

// supervisor keeps one source running: build, Run, and on failure rebuild
// and rerun with exponential backoff.
type supervisor struct {
	spec    sourceSpec
	cfg     Config
	w       *wiring
	ready   *readiness
	metrics *agentMetrics
	log     *zap.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

// Restart backoff bounds; variables so tests can shorten them.
var (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

func startSupervisor(ctx context.Context, s *supervisor) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.ready.set(s.spec.name, false)
	s.metrics.sourceUp.WithLabelValues(s.spec.name).Set(1)
	go func() {
		defer close(s.done)
		s.loop(ctx)
	}()
}

// stop cancels the source and waits at most timeout for Run to return.
func (s *supervisor) stop(timeout time.Duration) error {
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("the %s source did not stop within %s", s.spec.name, timeout)
	}
}

func (s *supervisor) loop(ctx context.Context) {
	backoff := minBackoff
	for {
		src, reg, err := buildSource(s.w, s.spec, s.cfg)
		if err == nil && src == nil {
			s.log.Info("source not available in this build; running without it")
			s.ready.remove(s.spec.name)
			s.metrics.sourceUp.DeleteLabelValues(s.spec.name)
			return
		}
		started := time.Now()
		if err == nil {
			err = s.runOnce(ctx, src)
			reg.unregisterAll()
		}
		s.metrics.sourceReady.WithLabelValues(s.spec.name).Set(0)
		if ctx.Err() != nil {
			s.ready.set(s.spec.name, false)
			return
		}
		if err == nil {
			err = errors.New("the source's Run returned before the agent stopped it")
		}
		s.ready.failed(s.spec.name, err, time.Now())
		s.metrics.sourceUp.WithLabelValues(s.spec.name).Set(0)
		s.metrics.sourceRestarts.WithLabelValues(s.spec.name).Inc()
		if time.Since(started) > maxBackoff {
			backoff = minBackoff
		}
		s.log.Error("source failed; restarting", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// runOnce runs src until it returns, turning a panic into an error so one
// source cannot take the agent down.
func (s *supervisor) runOnce(ctx context.Context, src findings.Source) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in Run: %v", p)
		}
	}()
	var once sync.Once
	ready := func() {
		once.Do(func() {
			// The gauges first: whoever waits on readiness may read them at once.
			s.metrics.sourceReady.WithLabelValues(s.spec.name).Set(1)
			s.metrics.sourceUp.WithLabelValues(s.spec.name).Set(1)
			s.ready.set(s.spec.name, true)
			s.log.Info("source ready")
		})
	}
	s.log.Info("source starting")
	return src.Run(ctx, ready)
}

// clearFindings resolves every finding the stopped source left in the store,
// so that a disabled source leaves nothing open behind it. The sink is the
// one buildSource gave the source: both come from the spec's name.
func (s *supervisor) clearFindings(store *findings.Store) {
	store.SourceSink(s.spec.name).Sync("", nil)
}
