// Package images is the image source: the known vulnerabilities of the OS
// packages in every local image and running container. Each image is read
// once per ID through the Engine's image export, its inventory cached on
// disk; running containers are read through /proc/<pid>/root. The packages
// are matched against OSV's per-ecosystem zips, which the source keeps
// current (or is given, offline); after a database update it matches the
// cached inventories again without reading any image.
package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images/inventory"
	"github.com/dockward/dockward/pkg/images/osv"
)

// Name is the source's name: its config section, its /readyz and metric
// label, the `source` field of its log lines and its findings' scope.
const Name = "images"

// Deps is what the agent passes in: the collaborators every source gets
// (Log, Registerer, Sink), then this source's own.
type Deps struct {
	Log        *zap.Logger           // nil: no logging
	Registerer prometheus.Registerer // nil: metrics are not registered
	Sink       findings.Sink
	// Engine is the Docker Engine API (required).
	Engine Engine
	// HTTPClient downloads the OSV zips; nil: one that honours the proxy
	// environment variables.
	HTTPClient *http.Client
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Source is the image source.
type Source struct {
	cfg     Config
	eng     Engine
	sink    findings.Sink
	log     *zap.Logger
	now     func() time.Time
	m       *metrics
	cache   inventory.Cache
	extract *inventory.Extractor
	db      osv.DB
	updater *osv.Updater

	// The state below belongs to the goroutine running Run or Scan.
	images     map[string]*imageState     // image ID -> state
	containers map[string]*containerState // running container ID -> state
	matches    map[osv.Query]chunk        // matched package versions and their CVEs
	matchedFor map[string]dbIdentity      // ecosystem -> the zip the matches are from
	strings    map[string]string          // the inventories' shared strings (see intern)
	records    map[string]int             // ecosystem -> records in its zip
	pending    []string                   // image IDs waiting to be extracted
	// imagesListed and containersListed are set by the first listing
	// that succeeds.
	imagesListed, containersListed bool

	// observed are the compliance observations of the last judgement.
	observed atomic.Pointer[map[string]findings.Observation]

	want      wanted     // the ecosystems in use, for the updater
	upMu      sync.Mutex // guards updateErr and forced
	updateErr map[string]error
	forced    map[string]bool // ecosystems to fetch on the next pass
}

// New builds the source and registers its metrics on d.Registerer.
func New(cfg Config, d Deps) (*Source, error) {
	if err := errors.Join(cfg.Validate(), cfg.Vulns.Validate()); err != nil {
		return nil, fmt.Errorf("images config: %w", err)
	}
	if d.Engine == nil || d.Sink == nil {
		return nil, errors.New("images: an engine and a findings sink are required")
	}
	log := d.Log
	if log == nil {
		log = zap.NewNop()
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	hc := d.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	db := osv.DB{Dir: cfg.Vulns.DB.Dir}
	s := &Source{
		cfg: cfg, eng: d.Engine, sink: d.Sink, log: log, now: now,
		cache: inventory.Cache{Dir: cfg.CacheDir},
		extract: inventory.NewExtractor(inventory.Limits{MaxImageSize: int64(cfg.MaxImageSize),
			MaxDatabaseSize: int64(cfg.MaxDatabaseSize)}, filepath.Join(cfg.CacheDir, "tmp"), log),
		db: db,
		updater: &osv.Updater{DB: db, URL: cfg.Vulns.DB.URL, Client: hc, MaxSize: int64(cfg.Vulns.DB.MaxSize),
			Offline: cfg.Vulns.DB.Offline, Now: now},
		images: map[string]*imageState{}, containers: map[string]*containerState{},
		matches: map[osv.Query]chunk{}, matchedFor: map[string]dbIdentity{}, strings: map[string]string{}, records: map[string]int{},
		updateErr: map[string]error{}, forced: map[string]bool{}, want: wanted{poke: make(chan struct{}, 1)},
	}
	s.m = newMetrics(now)
	if d.Registerer != nil {
		if err := s.m.register(d.Registerer); err != nil {
			return nil, fmt.Errorf("images: register metrics: %w", err)
		}
	}
	return s, nil
}

// Name implements findings.Source.
func (s *Source) Name() string { return Name }

// Scan implements findings.Source: every image and running container read
// (from the cache where it can), the zips in use brought up to date unless
// offline, and one judgement.
func (s *Source) Scan(ctx context.Context) error {
	if err := s.syncImages(ctx); err != nil {
		return err
	}
	for len(s.pending) > 0 && ctx.Err() == nil {
		s.extractNext(ctx)
	}
	if err := s.syncContainers(ctx); err != nil {
		return err
	}
	if !s.cfg.Vulns.DB.Offline {
		for _, base := range s.ecosystems() {
			s.updateOne(ctx, base)
		}
	}
	s.judge(ctx)
	return ctx.Err()
}

// Run implements findings.Source. It is ready once the cached inventories
// are judged; images never read before are read after that, one at a time,
// so a host with many new images does not hold the agent's start-up.
func (s *Source) Run(ctx context.Context, ready func()) error {
	if err := s.syncImages(ctx); err != nil {
		s.log.Warn("cannot list images yet; retrying with the event stream", zap.Error(err))
	}
	if err := s.syncContainers(ctx); err != nil {
		s.log.Warn("cannot list containers yet", zap.Error(err))
	}
	s.judge(ctx)
	ready()
	ev := make(chan change, 16)
	dbChanged := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.watchEvents(ctx, ev) }()
	go func() { defer wg.Done(); s.keepCurrent(ctx, dbChanged) }()
	s.loop(ctx, ev, dbChanged)
	wg.Wait()
	return nil
}

// loop serves changes until ctx ends: image and container events, the
// periodic rescans, database swaps, and pending extractions one at a time.
func (s *Source) loop(ctx context.Context, ev <-chan change, dbChanged <-chan struct{}) {
	rescan := time.NewTicker(s.cfg.Rescan)
	defer rescan.Stop()
	containers := time.NewTicker(s.cfg.ContainerRescan)
	defer containers.Stop()
	dbCheck := time.NewTicker(dbCheckInterval)
	defer dbCheck.Stop()
	lastJudge := s.now()
	for {
		idle := make(<-chan time.Time)
		if len(s.pending) > 0 {
			idle = time.After(0)
		}
		dirty := false
		select {
		case <-ctx.Done():
			return
		case c := <-ev:
			dirty = s.apply(ctx, c)
		case <-rescan.C:
			dirty = s.logErr("rescan of images", s.syncImages(ctx))
		case <-containers.C:
			dirty = s.logErr("rescan of containers", s.syncContainers(ctx))
		case <-dbChanged:
			dirty = true
		case <-dbCheck.C:
			dirty = s.dbMoved()
		case <-idle:
			s.extractNext(ctx)
			dirty = len(s.pending) == 0 || s.now().Sub(lastJudge) > 30*time.Second
		}
		if dirty {
			s.judge(ctx)
			lastJudge = s.now()
		}
	}
}

// dbCheckInterval is how often the zips are stat'ed for a swap made by hand.
var dbCheckInterval = time.Minute

// apply handles one change from the event stream.
func (s *Source) apply(ctx context.Context, c change) bool {
	dirty := false
	if c.images {
		dirty = s.logErr("image inventory", s.syncImages(ctx)) || dirty
	}
	if c.containers {
		dirty = s.logErr("container inventory", s.syncContainers(ctx)) || dirty
	}
	return dirty
}

// logErr logs a failed step and reports whether a judgement is due anyway.
func (s *Source) logErr(what string, err error) bool {
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn(what+" failed; keeping the last judgement", zap.Error(err))
		return false
	}
	return true
}
