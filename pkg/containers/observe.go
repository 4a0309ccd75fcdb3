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
// container sprawl (6.1, 6.2) once it has taken inventory. It also says
// which of its rule-judged checks it could not judge: every container,
// image or swarm check while that inventory has never been taken (the
// source is up, but Docker has not answered), and the swarm checks only
// a manager can judge.
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
	} else {
		notTaken(out, imageChecks, "no image inventory yet")
	}
	if s.inventoryTaken {
		out["6.2"] = findings.Observation{Status: findings.StatusInfo, Note: containerSprawl(s.known)}
	} else {
		notTaken(out, containerChecks, "no container inventory yet")
	}
	s.observeSwarm(out)
	return out
}

// The checks the source's rules judge, by what each needs: the container
// inventory, the image inventory, or the swarm's state.
var (
	containerChecks = findings.ChecksJudgedBy(func(r findings.Rule) bool { return r.Source == Name && r.Kind == findings.KindContainer })
	imageChecks     = findings.ChecksJudgedBy(func(r findings.Rule) bool { return r.Source == Name && r.Kind == findings.KindImage })
	swarmChecks     = findings.ChecksJudgedBy(func(r findings.Rule) bool { return r.Source == Name && strings.HasPrefix(r.ID, "swarm.") })
)

// notTaken observes checks as manual: what they need has never been read.
func notTaken(out map[string]findings.Observation, checks []string, what string) {
	for _, id := range checks {
		out[id] = findings.Observation{Status: findings.StatusManual,
			Note: "not judged: " + what + " (the Docker Engine API has not answered since the agent started)"}
	}
}

// managerOnlyChecks are the swarm checks only a manager can judge: the
// managers (7.1), where the manager listens (7.2) and auto-lock (7.5).
var managerOnlyChecks = []string{"7.1", "7.2", "7.5"}

// observeSwarm observes the swarm checks (5.1, 7.1-7.3, 7.5). Caller
// holds s.mu. Without swarm mode they pass, as docker-bench-security
// passes them, and say why; on a worker the managers' checks are manual.
func (s *Source) observeSwarm(out map[string]findings.Observation) {
	switch {
	case !s.swarmJudged:
		notTaken(out, swarmChecks, "the swarm's state has not been read")
		return
	case !inSwarm(s.swarm):
		for _, id := range swarmChecks {
			out[id] = findings.Observation{Status: findings.StatusPass, Note: "swarm mode is not enabled on this engine"}
		}
		return
	case !s.swarm.ControlAvailable:
		for _, id := range managerOnlyChecks {
			out[id] = findings.Observation{Status: findings.StatusManual,
				Note: "not judged: this node is a swarm worker; the managers, their addresses and auto-lock are judged by the agent on a manager"}
		}
		return
	}
	if s.swarmListenErr != "" {
		out["7.2"] = findings.Observation{Status: findings.StatusManual,
			Note: "the manager's listen address could not be read: " + s.swarmListenErr}
	}
	if s.swarmInspectErr != "" {
		out["7.5"] = findings.Observation{Status: findings.StatusManual,
			Note: "not judged: the swarm's settings could not be read: " + s.swarmInspectErr}
	}
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
