package images

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/images/osv"
)

// dbIdentity tells one zip from the next: a swap (by the updater or by
// hand) changes its size or time.
type dbIdentity struct {
	size    int64
	modTime time.Time
}

func identityOf(i osv.Info) dbIdentity { return dbIdentity{i.Size, i.ModTime} }

// ecosystems lists the ecosystems (OSV zip names: "Debian", "Alpine") the
// inventories use.
func (s *Source) ecosystems() []string {
	seen := map[string]bool{}
	add := func(ecos []string) {
		for _, e := range ecos {
			if b := osv.Base(e); b != "" {
				seen[b] = true
			}
		}
	}
	for _, im := range s.images {
		if im.inv != nil {
			add(im.inv.Ecosystems())
		}
	}
	for _, c := range s.containers {
		if c.inv != nil {
			add(c.inv.Ecosystems())
		}
	}
	out := make([]string, 0, len(seen))
	for b := range seen {
		if _, known := knownEcosystems[b]; known {
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out
}

// knownEcosystems are the OS ecosystems OSV publishes a zip for.
var knownEcosystems = map[string]struct{}{"Debian": {}, "Ubuntu": {}, "Alpine": {}, "AlmaLinux": {}, "Rocky Linux": {},
	"Red Hat": {}, "SUSE": {}, "openSUSE": {}, "Wolfi": {}, "Chainguard": {}, "Mageia": {}, "openEuler": {},
	"Azure Linux": {}, "Alpaquita": {}, "BellSoft Hardened Containers": {}, "MinimOS": {}}

// dbMoved reports whether any zip in use changed since it was matched.
func (s *Source) dbMoved() bool {
	for _, base := range s.ecosystems() {
		info, err := s.db.Info(base)
		if err != nil || info.Present != (s.matchedFor[base] != dbIdentity{}) || identityOf(info) != s.matchedFor[base] {
			return true
		}
	}
	return false
}

// wanted is the set of ecosystems the loop last saw in use, read by the
// updater goroutine.
type wanted struct {
	mu    sync.Mutex
	bases []string
	poke  chan struct{} // a new ecosystem appeared
}

// keepCurrent downloads the zips in use every vulns.db.refresh, and at once
// when an ecosystem without a zip appears; after a swap it pokes the loop.
// Offline, it never runs a request.
func (s *Source) keepCurrent(ctx context.Context, changed chan<- struct{}) {
	if s.cfg.Vulns.DB.Offline {
		return
	}
	tick := time.NewTicker(s.cfg.Vulns.DB.Refresh)
	defer tick.Stop()
	for {
		for _, base := range s.want.get() {
			if ctx.Err() != nil {
				return
			}
			if s.updateDue(base) && s.updateOne(ctx, base) {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.forceUpdate()
		case <-s.want.poke:
		}
	}
}

func (w *wanted) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bases...)
}

// set records the ecosystems in use and pokes the updater when one is new.
func (w *wanted) set(bases []string) {
	w.mu.Lock()
	old := map[string]bool{}
	for _, b := range w.bases {
		old[b] = true
	}
	w.bases = bases
	w.mu.Unlock()
	for _, b := range bases {
		if !old[b] {
			select {
			case w.poke <- struct{}{}:
			default:
			}
			return
		}
	}
}

// updateDue: a zip is fetched when missing, when older than the refresh
// period, or on the refresh tick (forceUpdate).
func (s *Source) updateDue(base string) bool {
	s.upMu.Lock()
	force := s.forced[base]
	delete(s.forced, base)
	s.upMu.Unlock()
	info, err := s.db.Info(base)
	return force || err != nil || !info.Present || info.Age(s.now()) >= s.cfg.Vulns.DB.Refresh
}

func (s *Source) forceUpdate() {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	for _, b := range s.want.get() {
		s.forced[b] = true
	}
}

// updateOne runs one conditional download and reports whether the zip was
// swapped. A failure keeps the old zip and is remembered for the findings.
func (s *Source) updateOne(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Vulns.DB.Timeout)
	defer cancel()
	s.m.dbChecks.WithLabelValues(base).Inc()
	res, err := s.updater.Update(ctx, base)
	s.upMu.Lock()
	s.updateErr[base] = err
	s.upMu.Unlock()
	if err != nil {
		reason := osv.ReasonRequest
		var ue *osv.UpdateError
		if errors.As(err, &ue) {
			reason = ue.Reason
		}
		s.m.dbUpdateErrors.WithLabelValues(reason).Inc()
		s.log.Warn("OSV database update failed; keeping the data there is", zap.String("ecosystem", base), zap.Error(err))
		return false
	}
	if res.Swapped {
		s.log.Info("OSV database updated", zap.String("ecosystem", base), zap.Int("records", res.Records))
	}
	return res.Swapped
}

func (s *Source) lastUpdateErr(base string) error {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	return s.updateErr[base]
}
