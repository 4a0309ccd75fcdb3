// Package containers judges every Docker container against the CIS
// section 4 and 5 rules: once at start (inventory), then live from the
// Docker event stream, resuming losslessly after a lost connection.
package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// Name is the source's name: its config section, its /readyz and metric
// label, the `source` field of its log lines and its findings' scope.
const Name = "containers"

// maxPendingExecs bounds the exec details kept between exec_create and
// exec_start; execs that are created and never started must not grow it.
const maxPendingExecs = 4096

// Deps is what the agent passes in: the collaborators every source gets
// (Log, Registerer, Sink), then this source's own.
type Deps struct {
	Log        *zap.Logger           // nil: no logging
	Registerer prometheus.Registerer // nil: metrics are not registered
	Sink       findings.Sink
	// Engine is the Docker Engine API (required).
	Engine Engine
	// OnDaemonReload, if not nil, is called on every daemon reload event
	// with GET /info as read after it (nil when that failed).
	OnDaemonReload func(*dockerinfo.Info)
	// HostRoot is where the host's / is mounted (the zero Root is /): the
	// source reads /proc through it to tell which executable a container's
	// process runs, and dockerd's sockets (the swarm's listen address).
	HostRoot hostfs.Root
}

// Source is the container judge.
type Source struct {
	cfg      Config
	root     hostfs.Root
	eng      Engine
	sink     findings.Sink
	log      *zap.Logger
	onReload func(*dockerinfo.Info)
	m        *metrics

	mu    sync.RWMutex
	known map[string]containerInfo // full ID -> what the agent last saw
	short map[string]string        // 12-hex ID -> full ID
	host  HostFacts
	swarm swarm.Info // GET /info's Swarm, read with host
	// swarmListenErr is why the swarm's listen address could not be judged
	// (7.2), empty when it was; swarmInspectErr why its settings (7.5)
	// could not be read. swarmJudged is set by the first judgement.
	swarmListenErr, swarmInspectErr string
	swarmJudged                     bool
	// images are the local images (ID -> name) as of the last inventory
	// and image events.
	images map[string]string
	// imagesTaken and inventoryTaken are set by the first complete image
	// and container inventories; tally counts execs (see observe.go).
	imagesTaken, inventoryTaken bool
	tally                       execTally

	// execs is touched only by the event loop.
	execs map[string]container.ExecInspectResponse
	// malformedSeen counts malformed events for log sampling.
	malformedSeen uint64
	// handled, when set (by tests), sees every event after de-duplication.
	handled func(events.Message)
}

type containerInfo struct {
	name, image, state string
	user               string // Config.User: who an exec without --user runs as
	imageID            string // the image it was created from (sha256:...)
}

// New builds the source and registers its metrics on d.Registerer.
func New(cfg Config, d Deps) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("containers config: %w", err)
	}
	cfg = cfg.withDefaults()
	if d.Engine == nil || d.Sink == nil {
		return nil, errors.New("containers: an engine and a findings sink are required")
	}
	log := d.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Source{cfg: cfg, eng: d.Engine, sink: d.Sink, log: log, onReload: d.OnDaemonReload, root: d.HostRoot,
		known: map[string]containerInfo{}, short: map[string]string{}, execs: map[string]container.ExecInspectResponse{}}
	s.m = newMetrics(s.stateCounts, s.imageCounts)
	if d.Registerer != nil {
		if err := s.m.register(d.Registerer); err != nil {
			return nil, fmt.Errorf("containers: register metrics: %w", err)
		}
	}
	return s, nil
}

// Name implements findings.Source.
func (s *Source) Name() string { return Name }

// NameOf resolves a full or 12-hex container ID to the container's name.
func (s *Source) NameOf(id string) (string, bool) {
	c, ok := s.infoOf(id)
	return c.name, ok
}

// ImageOf resolves a full or 12-hex container ID to the image it was
// created from, as its config names it, for audit attribution.
func (s *Source) ImageOf(id string) (string, bool) {
	c, ok := s.infoOf(id)
	return c.image, ok
}

// infoOf is what the source last saw of a container (full or 12-hex ID).
func (s *Source) infoOf(id string) (containerInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if full, ok := s.short[id]; ok {
		id = full
	}
	c, ok := s.known[id]
	return c, ok
}

func (s *Source) imageCounts() (total, unused int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.imageCountsLocked()
}

func (s *Source) stateCounts() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int, len(knownStates))
	for _, c := range s.known {
		out[c.state]++
	}
	return out
}

// Scan implements findings.Source: one inventory, no event stream.
func (s *Source) Scan(ctx context.Context) error {
	if _, err := s.refreshHost(ctx); err != nil {
		return err
	}
	return s.inventoryAll(ctx)
}

// inventoryAll judges everything the Engine API shows: every container,
// every image, and the swarm. One container dockerd cannot describe is a
// partialError, after which the rest is still judged.
func (s *Source) inventoryAll(ctx context.Context) error {
	var partial *partialError
	err := s.inventory(ctx)
	if err != nil && !errors.As(err, &partial) {
		return err
	}
	if err := s.inventoryImages(ctx); err != nil {
		return err
	}
	if err := s.judgeSwarm(ctx, s.swarmInfo()); err != nil {
		return err
	}
	return err
}

// Run implements findings.Source. It keeps one session (info, event stream,
// inventory, events) alive, and while Docker is unreachable it retries with
// a capped exponential backoff, reporting dockward_docker_up 0 and logging
// the outage once.
func (s *Source) Run(ctx context.Context, ready func()) error {
	var readyOnce sync.Once
	markReady := func() {
		if ready != nil {
			readyOnce.Do(ready)
		}
	}
	var cur cursor
	backoff := s.cfg.ReconnectBackoff
	var outageSince time.Time
	lost := false
	for {
		err := s.session(ctx, &cur, func() {
			if lost {
				s.m.reconnects.Inc()
				lost = false
			}
			if !outageSince.IsZero() {
				s.log.Info("docker connection restored; resumed events and re-took inventory",
					zap.Duration("outage", time.Since(outageSince).Round(time.Millisecond)), zap.String("since", cur.since()))
				outageSince = time.Time{}
			}
			backoff = s.cfg.ReconnectBackoff
			s.m.up.Set(1)
			markReady()
		})
		if ctx.Err() != nil {
			s.m.up.Set(0)
			return nil
		}
		if errors.Is(err, errMalformedStream) {
			// The connection is fine; the stream decoder is not. Resume
			// from the last event at once (no outage), after the base
			// backoff so a peer that keeps sending garbage cannot spin us.
			s.malformed("event stream", err)
			if !sleep(ctx, s.cfg.ReconnectBackoff) {
				return nil
			}
			continue
		}
		s.m.up.Set(0)
		lost = true
		if outageSince.IsZero() {
			outageSince = time.Now()
			s.log.Warn("docker unreachable; retrying until it is back (logged once per outage)",
				zap.Error(err), zap.Duration("backoff_max", s.cfg.ReconnectBackoffMax))
		}
		markReady()
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(backoff*2, s.cfg.ReconnectBackoffMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session subscribes to events (resuming at cur), takes inventory to
// reconcile whatever happened while it was not listening, then handles
// events until the stream fails.
func (s *Source) session(ctx context.Context, cur *cursor, connected func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	daemonTime, err := s.refreshHost(ctx)
	if err != nil {
		return err
	}
	cur.start(daemonTime)
	q := newEventQueue(s.eng.Events(ctx, client.EventsListOptions{Since: cur.since()}))
	var partial *partialError
	if err := s.inventoryAll(ctx); err != nil && !errors.As(err, &partial) {
		return err
	}
	if err := q.failed(); err != nil {
		return fmt.Errorf("docker event stream: %w", err)
	}
	connected()
	s.following(time.Now())
	rescanAt := time.Now().Add(s.cfg.RescanInterval)
	for {
		ev, err := s.nextEvent(ctx, q, rescanAt)
		if errors.Is(err, errRescanDue) {
			// Processes started in a container and swarm changes have no
			// event of their own: judge everything again.
			if err := s.rescan(ctx); err != nil {
				return err
			}
			rescanAt = time.Now().Add(s.cfg.RescanInterval)
			continue
		}
		if err != nil {
			return fmt.Errorf("docker event stream: %w", err)
		}
		if err := s.handle(ctx, cur, ev); err != nil {
			return err
		}
	}
}

// errRescanDue ends a wait for the next event when the periodic rescan is
// due.
var errRescanDue = errors.New("rescan due")

func (s *Source) nextEvent(ctx context.Context, q *eventQueue, rescanAt time.Time) (events.Message, error) {
	wait, cancel := context.WithDeadline(ctx, rescanAt)
	defer cancel()
	ev, err := q.next(wait)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return ev, errRescanDue
	}
	return ev, err
}

// rescan reads the daemon facts again and judges everything; a lost
// connection ends the session, anything else is logged and retried at the
// next rescan.
func (s *Source) rescan(ctx context.Context) error {
	start := time.Now()
	_, err := s.refreshHost(ctx)
	var partial *partialError
	if err == nil {
		err = s.inventoryAll(ctx)
	}
	switch {
	case err == nil || errors.As(err, &partial):
		s.log.Debug("rescan done", zap.Duration("took", time.Since(start)))
		return nil
	case connectionLost(err):
		return err
	}
	s.log.Warn("rescan failed; retrying at the next one", zap.Error(err), zap.Duration("rescan_interval", s.cfg.RescanInterval))
	return nil
}

// refreshHost reads the daemon-wide facts from GET /info and returns the
// daemon's clock, the base for resuming the event stream.
func (s *Source) refreshHost(ctx context.Context) (time.Time, error) {
	info, err := s.readInfo(ctx)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, info.SystemTime)
	if err != nil {
		t = time.Now()
	}
	return t, nil
}

// readInfo fetches and parses GET /info and keeps the facts the container
// rules need.
func (s *Source) readInfo(ctx context.Context) (*dockerinfo.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.eng.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker info: %w", err)
	}
	info := dockerinfo.Parse(&res.Info)
	s.mu.Lock()
	s.host = hostFactsFrom(info)
	s.swarm = info.Swarm
	s.mu.Unlock()
	return info, nil
}

func (s *Source) swarmInfo() swarm.Info {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.swarm
}

func (s *Source) hostFacts() HostFacts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.host
}

// inventory judges every container in every state, with bounded
// concurrency, and hands the store the complete judgement, which drops the
// findings of containers that no longer exist.
func (s *Source) inventory(ctx context.Context) error {
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	list, err := s.eng.ContainerList(lctx, client.ContainerListOptions{All: true})
	cancel()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	host := s.hostFacts()
	var (
		mu         sync.Mutex
		present    = make(map[string]containerInfo, len(list.Items))
		judged     = make(map[string][]findings.Finding, len(list.Items))
		lostErr    error
		skipped    []error
		skippedIDs []string
		wg         sync.WaitGroup
		ids        = make(chan string)
		previous   = s.snapshotKnown()
	)
	for range min(s.cfg.InventoryConcurrency, max(len(list.Items), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				c, found, err := s.inspect(ctx, id)
				var verdict []findings.Finding
				if found {
					verdict = s.judge(ctx, c, host)
				}
				mu.Lock()
				switch {
				case err != nil && connectionLost(err):
					if lostErr == nil {
						lostErr = err
					}
				case err != nil:
					// One container dockerd cannot describe must not stop
					// the others being judged; it keeps its last judgement.
					skipped = append(skipped, err)
					skippedIDs = append(skippedIDs, containerScope(id))
					present[id] = previous[id]
				case found:
					present[c.ID] = infoOf(c)
					judged[containerScope(c.ID)] = verdict
				}
				mu.Unlock()
			}
		}()
	}
	for _, item := range list.Items {
		ids <- item.ID
	}
	close(ids)
	wg.Wait()
	if lostErr != nil {
		// What was judged stands; what vanished waits for a complete list.
		for scope, found := range judged {
			s.sink.Set(scope, found)
		}
		return fmt.Errorf("inventory: %w", lostErr)
	}
	if len(skipped) > 0 {
		s.log.Warn("some containers could not be judged at inventory; they keep their last judgement",
			zap.Int("containers", len(skipped)), zap.Error(errors.Join(skipped...)))
	}
	s.mu.Lock()
	s.known, s.inventoryTaken = present, true
	s.short = make(map[string]string, len(present))
	for id := range present {
		s.short[findings.ShortID(id)] = id
	}
	s.mu.Unlock()
	s.sink.Sync(containerScopePrefix, judged, skippedIDs...) // containers that no longer exist are resolved
	s.m.inventory.Set(time.Since(start).Seconds())
	if len(skipped) > 0 {
		return &partialError{errors.Join(skipped...)}
	}
	return nil
}

// partialError is an inventory that judged every container it could.
type partialError struct{ err error }

func (e *partialError) Error() string { return "inventory incomplete: " + e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

// connectionLost tells a lost or refused connection (retry the session)
// from an answer about one container (skip it).
func connectionLost(err error) bool {
	var netErr *net.OpError
	return client.IsErrConnectionFailed(err) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)
}

func (s *Source) snapshotKnown() map[string]containerInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]containerInfo, len(s.known))
	for id, c := range s.known {
		out[id] = c
	}
	return out
}

// inspect returns found=false without an error when the container is gone.
func (s *Source) inspect(ctx context.Context, id string) (container.InspectResponse, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.eng.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return container.InspectResponse{}, false, nil
	case err != nil:
		s.m.inspectErr.Inc()
		return container.InspectResponse{}, false, fmt.Errorf("inspect container %s: %w", findings.ShortID(id), err)
	case res.Container.ID == "":
		s.m.inspectErr.Inc()
		return container.InspectResponse{}, false, fmt.Errorf("inspect container %s: response has no ID", findings.ShortID(id))
	}
	return res.Container, true, nil
}

// judge is every finding for one container: its inspect, and for a running
// container what runs inside it.
func (s *Source) judge(ctx context.Context, c container.InspectResponse, host HostFacts) []findings.Finding {
	return append(Judge(c, host, s.cfg.AllowedPorts...), s.processFindings(ctx, c)...)
}

func infoOf(c container.InspectResponse) containerInfo {
	info := containerInfo{name: strings.TrimPrefix(c.Name, "/"), state: "unknown", imageID: c.Image}
	if c.Config != nil {
		info.image, info.user = c.Config.Image, c.Config.User
	}
	if c.State != nil && c.State.Status != "" {
		info.state = string(c.State.Status)
	}
	return info
}

// judgeOne re-inspects one container after an event and replaces its
// findings; a container that is gone is forgotten. A lost connection is
// returned so the session ends (and the outage is logged once) instead of
// every queued event logging its own failure.
func (s *Source) judgeOne(ctx context.Context, id string) error {
	c, found, err := s.inspect(ctx, id)
	if err != nil && connectionLost(err) {
		return err
	}
	if err != nil {
		// The next inventory (after a reconnect at the latest) corrects it.
		s.log.Warn("could not judge container after event; keeping its last judgement", zap.Error(err),
			zap.Dict("container", zap.String("id", findings.ShortID(id))))
		return nil
	}
	if !found {
		s.forget(id)
		return nil
	}
	s.mu.Lock()
	s.known[c.ID] = infoOf(c)
	s.short[findings.ShortID(c.ID)] = c.ID
	host := s.host
	s.mu.Unlock()
	s.sink.Set(containerScope(c.ID), s.judge(ctx, c, host))
	return nil
}

func (s *Source) forget(id string) {
	s.mu.Lock()
	delete(s.known, id)
	if s.short[findings.ShortID(id)] == id {
		delete(s.short, findings.ShortID(id))
	}
	s.mu.Unlock()
	s.sink.Set(containerScope(id), nil)
}

// handle processes one event from the stream. It returns an error only
// when the connection to Docker is lost.
func (s *Source) handle(ctx context.Context, cur *cursor, ev events.Message) error {
	typ, action := eventLabels(string(ev.Type), string(ev.Action))
	if ev.Type == "" || ev.Action == "" || (ev.Type == events.ContainerEventType && ev.Actor.ID == "") {
		// Checked before de-duplication: without an actor or a sane time
		// the event cannot be placed in the stream.
		s.m.events.WithLabelValues(typ, action).Inc()
		s.malformed("event without type, action or actor", fmt.Errorf("%w: type=%q action=%q", errMalformedStream, truncate(string(ev.Type), 64), truncate(string(ev.Action), 64)))
		return nil
	}
	if cur.seenBefore(ev) {
		return nil
	}
	s.m.events.WithLabelValues(typ, action).Inc()
	if s.handled != nil {
		defer s.handled(ev)
	}
	switch ev.Type {
	case events.ContainerEventType:
		return s.containerEvent(ctx, action, ev)
	case events.ImageEventType:
		return s.imageEvent(ctx, action, ev.Actor.ID)
	case events.NetworkEventType:
		if err := s.judgeNetworks(ctx, inSwarm(s.swarmInfo())); err != nil && connectionLost(err) {
			return err
		} else if err != nil {
			s.log.Warn("could not judge the overlay networks after a network event", zap.Error(err))
		}
	case events.DaemonEventType:
		if action == "reload" {
			s.daemonReload(ctx)
		}
	}
	return nil
}

func (s *Source) containerEvent(ctx context.Context, action string, ev events.Message) error {
	id := ev.Actor.ID
	switch action {
	case "destroy":
		s.forget(id)
	case "create", "start", "update", "rename", "die", "pause", "unpause", "restart", "stop", "kill", "oom":
		return s.judgeOne(ctx, id)
	case "exec_create":
		s.execCreated(ctx, ev)
	case "exec_start":
		s.execStarted(ctx, ev)
	case "exec_die", "exec_detach":
		delete(s.execs, ev.Actor.Attributes["execID"])
	}
	return nil
}

// daemonReload re-reads the daemon facts, re-judges everything when they
// changed, and tells the agent (the daemon-settings judge listens), handing
// over GET /info as read here so that it is fetched once per reload.
func (s *Source) daemonReload(ctx context.Context) {
	before := s.hostFacts()
	info, err := s.readInfo(ctx)
	if err != nil {
		s.log.Warn("docker daemon reloaded but its settings could not be read", zap.Error(err))
	} else if s.hostFacts() != before {
		s.log.Info("docker daemon settings changed on reload; re-judging every container")
		var partial *partialError
		if err := s.inventory(ctx); err != nil && !errors.As(err, &partial) {
			s.log.Warn("re-judging containers after daemon reload failed", zap.Error(err))
		}
	}
	if s.onReload != nil {
		s.onReload(info) // nil when it could not be read: the listener reads it
	}
}

// malformed counts a malformed event and logs it, sampled at powers of two
// so a peer sending garbage cannot flood the log.
func (s *Source) malformed(what string, err error) {
	s.m.malformed.Inc()
	s.malformedSeen++
	if n := s.malformedSeen; n&(n-1) == 0 {
		s.log.Warn("malformed docker event skipped", zap.String("where", what), zap.Error(err),
			zap.Uint64("malformed_total", n))
	}
}

func truncate(v string, n int) string {
	if len(v) <= n {
		return v
	}
	return strings.ToValidUTF8(v[:n], "") + "…"
}
