package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
)

// stopTimeout bounds shutdown: systemd's default stop timeout is longer,
// but the agent promises 10 s, leaving room for the HTTP server after the
// sources (audit restores kernel state on the way out) have returned.
const (
	stopTimeout       = 10 * time.Second
	sourceStopTimeout = 8 * time.Second
)

// agent is the running daemon.
type agent struct {
	o       options
	log     *zap.Logger
	w       *wiring
	store   *findings.Store
	metrics *agentMetrics
	ready   *readiness
	cfg     Config
	running map[string]*supervisor // by spec name
}

func runDaemon(o options, stderr io.Writer) int {
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "dockward: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	mainLog := log.With(zap.String("source", "agent"))
	// Catch signals before anything is served: a SIGHUP that arrives once
	// /metrics answers must reload, not kill the process.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	cfg, ok := startupConfig(o, mainLog, stderr)
	if !ok {
		return exitUsage
	}
	a, reg := newAgent(o, log, mainLog, cfg)
	compliance := func() findings.Compliance { return a.w.compliance(a.ready.isReady) }
	reg.MustRegister(findings.NewComplianceCollector(compliance))
	handler, err := newHandler(o, reg, a.store, a.ready, compliance, log)
	if err != nil {
		mainLog.Error("building HTTP routes", zap.Error(err))
		return exitUsage
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	serve, err := listen(o.web)
	if err != nil {
		mainLog.Error("cannot listen; not starting", zap.Error(err))
		fmt.Fprintf(stderr, "dockward: %v\n", err)
		return exitFailure
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- serve(server, slogFor(log, "http")) }()

	mainLog.Info("starting dockward", zap.String("version", version.Info()), zap.String("build", version.BuildContext()),
		zap.String("config", o.configFile))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, spec := range sourceSpecs {
		a.start(ctx, spec, cfg)
	}
	go a.notifyReadyOnce(ctx)
	go a.watchdog(ctx)
	return a.serveUntilStopped(ctx, cancel, server, serveErr, signals)
}

// startupConfig loads the config file and checks the web config file,
// logging and printing what is wrong; false means the agent must not start.
func startupConfig(o options, mainLog *zap.Logger, stderr io.Writer) (Config, bool) {
	cfg, err := loadConfig(o.configFile)
	if err != nil {
		mainLog.Error("invalid config; not starting", zap.String("path", o.configFile), zap.Error(err))
		fmt.Fprintf(stderr, "dockward: %v\n", err)
		return Config{}, false
	}
	if *o.web.WebConfigFile != "" {
		if err := web.Validate(*o.web.WebConfigFile); err != nil {
			mainLog.Error("invalid web config; not starting", zap.String("path", *o.web.WebConfigFile), zap.Error(err))
			fmt.Fprintf(stderr, "dockward: --%s %s: %v\n", flagWebConfigFile, *o.web.WebConfigFile, err)
			return Config{}, false
		}
	}
	return cfg, true
}

// newAgent builds the agent on cfg, with its store, metrics and registry;
// no source runs yet.
func newAgent(o options, log, mainLog *zap.Logger, cfg Config) (*agent, *prometheus.Registry) {
	store := findings.NewStore(log)
	store.ApplyPolicy(cfg.Policy)
	m := newAgentMetrics()
	m.lastReloadOK.Set(1)
	m.lastReloadTimestamp.SetToCurrentTime()
	reg := newRegistry(store, m, !o.disableExporterMetrics)
	return &agent{
		o: o, log: mainLog, store: store, metrics: m, ready: newReadiness(), cfg: cfg,
		w:       &wiring{log: log, reg: reg, store: store, dockerHost: o.dockerHost},
		running: map[string]*supervisor{},
	}, reg
}

// serveUntilStopped reloads on SIGHUP and shuts down on SIGTERM or SIGINT,
// or when the HTTP server fails, returning the exit code.
func (a *agent) serveUntilStopped(ctx context.Context, cancel context.CancelFunc, server *http.Server,
	serveErr <-chan error, signals <-chan os.Signal) int {
	for {
		select {
		case err := <-serveErr:
			if errors.Is(err, http.ErrServerClosed) {
				err = errors.New("HTTP server closed unexpectedly")
			}
			a.log.Error("HTTP server failed; stopping", zap.Error(err))
			a.shutdown(cancel, server)
			return exitFailure
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				a.reload(ctx)
				continue
			}
			a.log.Info("stopping", zap.String("signal", sig.String()))
			if !a.shutdown(cancel, server) {
				return exitFailure
			}
			return exitOK
		}
	}
}

// listen binds the TCP listen addresses before any source starts, so a taken
// port fails fast without the audit source having touched the kernel.
// Socket activation and vsock addresses are left to exporter-toolkit.
func listen(flags *web.FlagConfig) (func(*http.Server, *slog.Logger) error, error) {
	toolkit := func(s *http.Server, l *slog.Logger) error { return web.ListenAndServe(s, flags, l) }
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		return toolkit, nil
	}
	var listeners []net.Listener
	for _, addr := range *flags.WebListenAddresses {
		if strings.HasPrefix(addr, "vsock://") {
			for _, l := range listeners {
				l.Close()
			}
			return toolkit, nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, fmt.Errorf("--%s %s: %w", flagListenAddress, addr, err)
		}
		listeners = append(listeners, l)
	}
	return func(s *http.Server, l *slog.Logger) error { return web.ServeMultiple(listeners, s, flags, l) }, nil
}

// start launches the supervisor of one enabled source.
func (a *agent) start(ctx context.Context, spec sourceSpec, cfg Config) {
	if !spec.enabled(cfg) {
		a.log.Info("source disabled in config", zap.String("name", spec.name))
		return
	}
	s := &supervisor{spec: spec, cfg: cfg, w: a.w, ready: a.ready, metrics: a.metrics, log: a.w.sourceLog(spec.name)}
	a.running[spec.name] = s
	startSupervisor(ctx, s)
}

// stopSource stops one source, waits for it, and resolves what it left open.
func (a *agent) stopSource(name string) {
	s, ok := a.running[name]
	if !ok {
		return
	}
	delete(a.running, name)
	if err := s.stop(sourceStopTimeout); err != nil {
		a.log.Error("source did not stop in time; its goroutine is abandoned", zap.String("name", name), zap.Error(err))
	}
	a.ready.remove(name)
	a.metrics.sourceReady.WithLabelValues(name).Set(0)
	a.metrics.sourceUp.DeleteLabelValues(name)
	a.w.dropListeners(name)
	s.clearFindings(a.store)
}

// reload re-reads the config file. A bad file is rejected and logged and the
// running config stays; otherwise the policy is re-applied and every source
// whose section (or the rootfs) changed is stopped and started again with
// the new config.
func (a *agent) reload(ctx context.Context) {
	notify(a.log, daemon.SdNotifyReloading)
	defer notify(a.log, daemon.SdNotifyReady)
	a.metrics.reloads.Inc()
	next, err := loadConfig(a.o.configFile)
	if err != nil {
		a.metrics.reloadFailures.Inc()
		a.metrics.lastReloadOK.Set(0)
		a.log.Error("config reload rejected; keeping the running config", zap.String("path", a.o.configFile), zap.Error(err))
		return
	}
	if !reflect.DeepEqual(a.cfg.Policy, next.Policy) {
		a.store.ApplyPolicy(next.Policy)
	}
	var restarted []string
	for _, spec := range sourceSpecs {
		if !sourceChanged(spec, a.cfg, next) {
			continue
		}
		a.stopSource(spec.name)
		a.start(ctx, spec, next)
		restarted = append(restarted, spec.name)
	}
	a.cfg = next
	a.metrics.lastReloadOK.Set(1)
	a.metrics.lastReloadTimestamp.SetToCurrentTime()
	a.log.Info("config reloaded", zap.String("path", a.o.configFile), zap.Strings("restarted_sources", restarted))
}

// shutdown stops every source (waiting for them to clean up) and then the
// HTTP server, all within stopTimeout. It reports whether all stopped cleanly.
func (a *agent) shutdown(cancel context.CancelFunc, server *http.Server) bool {
	notify(a.log, daemon.SdNotifyStopping)
	deadline := time.Now().Add(stopTimeout)
	cancel()
	clean := true
	for name, s := range a.running {
		if err := s.stop(time.Until(deadline) - time.Second); err != nil {
			a.log.Error("source did not stop in time", zap.String("name", name), zap.Error(err))
			clean = false
		}
	}
	ctx, done := context.WithDeadline(context.Background(), deadline)
	defer done()
	if err := server.Shutdown(ctx); err != nil {
		a.log.Error("HTTP server did not stop cleanly", zap.Error(err))
		clean = false
	}
	a.log.Info("stopped", zap.Bool("clean", clean))
	return clean
}

// notifyReadyOnce tells systemd READY=1 once every enabled source is ready.
func (a *agent) notifyReadyOnce(ctx context.Context) {
	if err := a.ready.waitReady(ctx); err != nil {
		return
	}
	a.log.Info("all enabled sources ready")
	notify(a.log, daemon.SdNotifyReady)
}

// watchdog pings systemd at half the interval it asks for (WatchdogSec).
func (a *agent) watchdog(ctx context.Context) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		a.log.Warn("reading the systemd watchdog settings", zap.Error(err))
		return
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			notify(a.log, daemon.SdNotifyWatchdog)
		}
	}
}

// notify sends a state to systemd; it is a no-op outside systemd.
func notify(log *zap.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("notifying systemd", zap.String("state", state), zap.Error(err))
	}
}

// sourceChanged reports whether a reload from old to next must rebuild the
// source: its section changed, or the rootfs, which moves every source's
// view of the host.
func sourceChanged(spec sourceSpec, old, next Config) bool {
	return !reflect.DeepEqual(spec.section(old), spec.section(next)) || old.RootFS != next.RootFS
}
