package containers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

// execTally counts the execs that ran privileged or as root since the
// source began following events: the compliance report's 5.23 and 5.24,
// which are events and never findings.
type execTally struct {
	since                          time.Time // zero until the event stream is followed
	privileged, root               uint64
	lastPrivileged, lastRootTarget string // container names
}

// following marks the start of event watching; only then can the tally
// say that no exec happened.
func (s *Source) following(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tally.since.IsZero() {
		s.tally.since = now
	}
}

func (s *Source) noteExec(privileged, root bool, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if privileged {
		s.tally.privileged++
		s.tally.lastPrivileged = container
	}
	if root {
		s.tally.root++
		s.tally.lastRootTarget = container
	}
}

// Observations reports the checks the source observes rather than judges:
// docker exec (5.23, 5.24) while it follows events, and image and
// container sprawl (6.1, 6.2) once it has taken inventory.
func (s *Source) Observations() map[string]findings.Observation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]findings.Observation{}
	if t := s.tally; !t.since.IsZero() {
		since := t.since.UTC().Format(time.RFC3339)
		out["5.23"] = execObservation(t.privileged, "privileged", t.lastPrivileged, since)
		out["5.24"] = execObservation(t.root, "as root", t.lastRootTarget, since)
	}
	if s.imagesTaken {
		total, unused := s.imageCountsLocked()
		out["6.1"] = findings.Observation{Status: findings.StatusInfo,
			Note: fmt.Sprintf("%d images, %d not used by any container", total, unused)}
	}
	if s.inventoryTaken {
		out["6.2"] = findings.Observation{Status: findings.StatusInfo, Note: containerSprawl(s.known)}
	}
	if s.swarmListenErr != "" && inSwarm(s.swarm) {
		out["7.2"] = findings.Observation{Status: findings.StatusManual,
			Note: "the manager's listen address could not be read: " + s.swarmListenErr}
	}
	return out
}

func execObservation(n uint64, how, last, since string) findings.Observation {
	if n == 0 {
		return findings.Observation{Status: findings.StatusPass, Note: "no docker exec ran " + how + " since " + since}
	}
	return findings.Observation{Status: findings.StatusInfo,
		Note: fmt.Sprintf("%d docker exec ran %s since %s (the last in container %s)", n, how, since, last)}
}

// containerSprawl summarises the containers by state: "5 containers: 2
// running, 3 exited".
func containerSprawl(known map[string]containerInfo) string {
	by := map[string]int{}
	for _, c := range known {
		by[c.state]++
	}
	states := make([]string, 0, len(by))
	for st := range by {
		states = append(states, st)
	}
	sort.Strings(states)
	parts := make([]string, len(states))
	for i, st := range states {
		parts[i] = fmt.Sprintf("%d %s", by[st], st)
	}
	note := fmt.Sprintf("%d containers", len(known))
	if len(parts) > 0 {
		note += ": " + strings.Join(parts, ", ")
	}
	return note
}
