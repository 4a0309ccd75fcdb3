// Package watcher is the host source: it judges the Docker daemon's
// effective settings (CIS 2.x), the ownership and modes of Docker's files
// (CIS 3.x) and the integrity of Docker's binaries, and watches them with
// fsnotify so that a change is judged at once.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// Name is the source's name: its config section, its /readyz and metric
// label, the `source` field of its log lines and its findings' scope.
const Name = "host"

// Deps is what the agent passes in: the collaborators every source gets
// (Log, Registerer, Sink), then this source's own.
type Deps struct {
	Log        *zap.Logger           // nil: no logging
	Registerer prometheus.Registerer // nil: metrics are not registered
	Sink       findings.Sink
	Docker     DockerAPI // nil: judge without GET /info
	// Host is the host's root filesystem, where every host path is looked
	// up (the zero Root is this machine's /).
	Host hostfs.Root
}

// Source is the host source (findings.Source).
type Source struct {
	cfg    Config
	log    *zap.Logger
	mu     sync.Mutex // serialises scans
	s      *scanner
	reload chan struct{}
}

var _ findings.Source = (*Source)(nil)

// New builds the source. It fails on an invalid config, or metrics that
// cannot be registered.
func New(cfg Config, d Deps) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("host config: %w", err)
	}
	if d.Sink == nil {
		return nil, errors.New("host source: no findings sink")
	}
	log := d.Log
	if log == nil {
		log = zap.NewNop()
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering host metrics: %w", err)
	}
	return &Source{cfg: cfg, log: log, s: newScanner(cfg, d.Host, d.Docker, d.Sink, log, m), reload: make(chan struct{}, 1)}, nil
}

// Name implements findings.Source.
func (src *Source) Name() string { return Name }

// Observations are the compliance report's observations of the last scan:
// the host checks that could not be judged (manual) and the file checks
// whose files this host does not have (not_applicable).
func (src *Source) Observations() map[string]findings.Observation {
	if o := src.s.observations.Load(); o != nil {
		return *o
	}
	return nil
}

// DockerdPID is the PID of the running dockerd as of the last judgement
// (0 when unknown). Safe to call from any goroutine.
func (src *Source) DockerdPID() int { return int(src.s.pid.Load()) }

// DaemonReloaded asks for the daemon's settings to be judged again (dockerd
// reloaded daemon.json on SIGHUP). info is GET /info as whoever saw the
// reload fetched it after the reload, judged instead of fetching it again;
// nil means fetch it. It never blocks.
func (src *Source) DaemonReloaded(info *dockerinfo.Info) {
	if info != nil {
		src.s.reloadInfo.Store(info)
	}
	select {
	case src.reload <- struct{}{}:
	default:
	}
}

// Scan judges everything once.
func (src *Source) Scan(ctx context.Context) error {
	src.mu.Lock()
	defer src.mu.Unlock()
	src.s.scan(ctx)
	return ctx.Err()
}

// Run judges at start, then again after every change fsnotify reports
// (debounced), every daemon reload, and every RescanInterval.
func (src *Source) Run(ctx context.Context, ready func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		src.s.countError(reasonWatch)
		src.log.Error("fsnotify unavailable; relying on the periodic rescan", zap.Error(err), zap.Duration("rescan_interval", src.cfg.RescanInterval))
	} else {
		defer w.Close()
	}
	dirs := newWatchSet(src.s.fs, w, src.s)
	// scanAndWatch judges and re-aims the watches under one lock, since
	// both touch the scanner's state.
	scanAndWatch := func() {
		src.mu.Lock()
		defer src.mu.Unlock()
		src.s.scan(ctx)
		if ctx.Err() == nil {
			dirs.update(src.s.watched)
		}
	}
	scanAndWatch()
	if ctx.Err() != nil {
		return nil
	}
	ready()

	ticker := time.NewTicker(src.cfg.RescanInterval)
	defer ticker.Stop()
	var debounce <-chan time.Time
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	rescan := func() {
		debounce = nil
		scanAndWatch()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			src.mu.Lock()
			relevant := dirs.relevant(ev.Name)
			src.mu.Unlock()
			if relevant && debounce == nil {
				debounce = time.After(src.cfg.Debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflowed queue lost events: judge everything now.
			src.s.countError(reasonWatch)
			src.log.Warn("fsnotify error; rescanning", zap.Error(err))
			if debounce == nil {
				debounce = time.After(src.cfg.Debounce)
			}
		case <-debounce:
			rescan()
		case <-src.reload:
			rescan()
		case <-ticker.C:
			rescan()
		}
	}
}

// watchSet keeps fsnotify watches on the parent directory of every watched
// path: an atomic replace (write a temporary file, rename it over the old
// one) swaps the inode, which a watch on the file itself would lose.
type watchSet struct {
	fs    hostfs.Root
	w     *fsnotify.Watcher
	s     *scanner
	dirs  map[string]map[string]bool // local dir -> base names ("" = any)
	added map[string]bool
}

func newWatchSet(fs hostfs.Root, w *fsnotify.Watcher, s *scanner) *watchSet {
	return &watchSet{fs: fs, w: w, s: s, added: map[string]bool{}}
}

func (ws *watchSet) update(paths []watchedPath) {
	want := map[string]map[string]bool{}
	addName := func(dir, base string) {
		if want[dir] == nil {
			want[dir] = map[string]bool{}
		}
		want[dir][base] = true
	}
	for _, p := range paths {
		// Watch the parent as named and as resolved: a symlinked file's
		// target may live elsewhere.
		for _, hp := range ws.names(p.path) {
			dir, err := ws.fs.Resolve(path.Dir(hp))
			if err != nil {
				continue
			}
			addName(ws.fs.Local(dir), path.Base(hp))
		}
		if p.tree {
			if real, err := ws.fs.Resolve(p.path); err == nil {
				root := ws.fs.Local(real)
				_ = filepath.WalkDir(root, func(lp string, d os.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						addName(lp, "")
					}
					return nil
				})
			}
		}
	}
	ws.dirs = want
	if ws.w == nil {
		return
	}
	for dir := range want {
		if ws.added[dir] {
			continue
		}
		if err := ws.w.Add(dir); err != nil {
			ws.s.note("watch:"+dir, reasonWatch, "cannot watch directory; the periodic rescan covers it", zap.String("path", dir), zap.Error(err))
			continue
		}
		ws.added[dir] = true
	}
	for dir := range ws.added {
		if _, ok := want[dir]; !ok {
			_ = ws.w.Remove(dir)
			delete(ws.added, dir)
		}
	}
}

// names returns p and, when it is a symlink, what it resolves to.
func (ws *watchSet) names(p string) []string {
	out := []string{p}
	if real, err := ws.fs.Resolve(p); err == nil && real != p {
		out = append(out, real)
	}
	return out
}

// relevant reports whether an event's local path is one we watch.
func (ws *watchSet) relevant(local string) bool {
	dir, base := filepath.Dir(local), filepath.Base(local)
	names := ws.dirs[dir]
	return names[base] || names[""]
}
