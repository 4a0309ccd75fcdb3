package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// sourceState is what /readyz knows of one enabled source.
type sourceState struct {
	ready bool
	// failures counts the runs that failed since the source was last
	// ready; lastErr and failedAt describe the latest of them.
	failures int
	lastErr  string
	failedAt time.Time
}

// readiness tracks which enabled sources have called ready, and why the
// ones that keep failing fail.
type readiness struct {
	mu      sync.Mutex
	state   map[string]sourceState // by enabled source
	changed chan struct{}          // closed and replaced on every change
}

func newReadiness() *readiness {
	return &readiness{state: map[string]sourceState{}, changed: make(chan struct{})}
}

// set marks a source ready or not; becoming ready forgets its failures.
func (r *readiness) set(name string, ready bool) {
	r.update(name, func(s *sourceState) {
		s.ready = ready
		if ready {
			*s = sourceState{ready: true}
		}
	})
}

// failed records that a run of the source failed with err.
func (r *readiness) failed(name string, err error, at time.Time) {
	r.update(name, func(s *sourceState) {
		s.ready = false
		s.failures++
		s.lastErr = err.Error()
		s.failedAt = at
	})
}

func (r *readiness) update(name string, f func(*sourceState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state[name]
	f(&s)
	r.state[name] = s
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *readiness) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.state, name)
	close(r.changed)
	r.changed = make(chan struct{})
}

// notReady lists the enabled sources that have not called ready, sorted;
// empty means the agent is ready. ch is closed on the next change.
func (r *readiness) notReady() (names []string, ch <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, s := range r.state {
		if !s.ready {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, r.changed
}

// report is the /readyz body while some source is not ready: the pending
// sources on the first line, then one line per failing source with how
// often and since when it fails and its last error, so that a probe's
// output says what to fix.
func (r *readiness) report() (string, bool) {
	pending, _ := r.notReady()
	if len(pending) == 0 {
		return "ready\n", true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "not ready: waiting for %s\n", strings.Join(pending, ", "))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range pending {
		s := r.state[n]
		if s.failures == 0 {
			fmt.Fprintf(&b, "%s: starting\n", n)
			continue
		}
		fmt.Fprintf(&b, "%s: failing (%d failed runs since it was last ready, the latest at %s): %s\n",
			n, s.failures, s.failedAt.UTC().Format(time.RFC3339), s.lastErr)
	}
	return b.String(), false
}

func (r *readiness) isReady(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state[name].ready
}

// waitReady blocks until every enabled source is ready or ctx ends.
func (r *readiness) waitReady(ctx context.Context) error {
	for {
		pending, ch := r.notReady()
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
