package images

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images/inventory"
	"github.com/dockward/dockward/pkg/images/osv"
)

// judge matches what is not matched yet and reports every image, container
// and ecosystem in one go: findings to the sink, counts to the metrics.
func (s *Source) judge(ctx context.Context) {
	bases := s.ecosystems()
	s.want.set(bases)
	status := s.match(ctx, bases)
	judged := map[string][]findings.Finding{}
	snap := &snapshot{db: status, cveSeries: s.cfg.Vulns.CVESeries, pending: len(s.pending)}
	for _, im := range s.images {
		fs, counts := s.judgeImage(im, status)
		judged["image/"+im.id] = fs
		if im.inv != nil {
			snap.inventoried++
		}
		if counts != nil {
			is := imageSeries{id: im.id, name: im.name(), counts: counts.counts}
			if s.cfg.Vulns.CVESeries {
				is.cves = counts.list()
			}
			snap.images = append(snap.images, is)
		}
	}
	for _, c := range s.containers {
		fs, counts := s.judgeContainer(c, status)
		judged["container/"+c.id] = fs
		if counts != nil {
			snap.containers = append(snap.containers, containerSeries{id: c.id, name: c.name, imageID: c.imageID, counts: counts.counts})
		}
	}
	for base, st := range status {
		judged["db/"+base] = s.judgeDB(base, st)
	}
	// One complete judgement: the store resolves the scopes that vanished
	// (an image deleted, a container stopped).
	s.sink.Sync("", judged)
	obs := s.observe()
	s.observed.Store(&obs)
	s.m.swap(snap)
	s.prune()
}

// prune forgets the matches of package versions no inventory
// has any more, so a host that churns images does not grow the caches.
func (s *Source) prune() {
	live := s.queries()
	for q := range s.matches {
		if _, ok := live[q]; !ok {
			delete(s.matches, q)
		}
	}
}

// dbStatus is one ecosystem's zip as the judgement saw it.
type dbStatus struct {
	info    osv.Info
	records int
	err     error // unreadable zip
}

func (d dbStatus) usable() bool { return d.info.Present && d.err == nil }

// match brings the matches up to date: every query of an ecosystem whose
// zip changed is matched again, and new queries (packages of an image just
// read) are matched once; both in one pass over the zip.
func (s *Source) match(ctx context.Context, bases []string) map[string]dbStatus {
	byBase := map[string][]osv.Query{}
	for q := range s.queries() {
		byBase[osv.Base(q.Ecosystem)] = append(byBase[osv.Base(q.Ecosystem)], q)
	}
	start := time.Now()
	status := make(map[string]dbStatus, len(bases))
	for _, base := range bases {
		info, err := s.db.Info(base)
		if err != nil || !info.Present {
			s.forget(base)
			status[base] = dbStatus{info: info, err: err}
			continue
		}
		st := dbStatus{info: info, records: s.records[base]}
		if identityOf(info) != s.matchedFor[base] {
			s.forget(base)
			s.matchedFor[base] = identityOf(info)
		}
		var todo []osv.Query
		for _, q := range byBase[base] {
			if _, done := s.matches[q]; !done {
				todo = append(todo, q)
			}
		}
		if len(todo) > 0 {
			st = s.matchZip(ctx, base, info, todo)
		}
		status[base] = st
	}
	s.m.matchDuration.Set(time.Since(start).Seconds())
	return status
}

// matchZip runs one pass over a zip for the queries not matched yet.
func (s *Source) matchZip(ctx context.Context, base string, info osv.Info, todo []osv.Query) dbStatus {
	out, st, err := osv.MatchZip(ctx, info.Path, todo)
	if err != nil {
		s.forget(base)
		s.m.scanErrors.WithLabelValues("database_unreadable").Inc()
		s.log.Warn("OSV database unreadable", zap.String("ecosystem", base), zap.Error(err))
		return dbStatus{info: info, err: err}
	}
	for _, q := range todo {
		s.matches[q] = s.group(q, out[q])
	}
	s.records[base] = st.Records
	if st.Invalid > 0 || st.BadVersions > 0 {
		s.log.Debug("OSV records skipped", zap.String("ecosystem", base), zap.Int("invalid", st.Invalid),
			zap.Int("bad_versions", st.BadVersions))
	}
	return dbStatus{info: info, records: st.Records}
}

// forget drops the matches of an ecosystem (its zip changed or went).
func (s *Source) forget(base string) {
	for q := range s.matches {
		if osv.Base(q.Ecosystem) == base {
			delete(s.matches, q)
		}
	}
	delete(s.matchedFor, base)
	delete(s.records, base)
}

// queries are the distinct package versions of every inventory, as
// records name them (a thousand images share most of theirs).
func (s *Source) queries() map[osv.Query]struct{} {
	out := map[osv.Query]struct{}{}
	add := func(inv *inventory.Inventory) {
		if inv == nil {
			return
		}
		for _, p := range inv.Packages {
			for _, q := range p.Queries() {
				out[q] = struct{}{}
			}
		}
	}
	for _, im := range s.images {
		add(im.inv)
	}
	for _, c := range s.containers {
		add(c.inv)
	}
	return out
}
