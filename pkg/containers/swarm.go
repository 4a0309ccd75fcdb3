package containers

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// The source's sink scopes, one group per kind of subject, so each group is
// synchronised on its own.
const (
	containerScopePrefix = "container/"
	swarmScope           = "swarm"
	networkScopePrefix   = "network/"
)

func containerScope(id string) string { return containerScopePrefix + id }

// maxManagers is the most managers a swarm needs: seven tolerate three
// failures, and more only slow the Raft consensus down.
const maxManagers = 7

var swarmSubject = findings.Subject{Kind: findings.KindDaemon, Name: "swarm"}

// inSwarm reports whether the engine takes part in a swarm (locked and
// pending included: the node is configured for swarm mode either way).
func inSwarm(info swarm.Info) bool {
	return info.LocalNodeState != "" && info.LocalNodeState != swarm.LocalNodeStateInactive
}

// judgeSwarm judges swarm mode (CIS 5.1) and, on a manager, the swarm's
// managers (7.1), addresses (7.2) and auto-lock (7.5), then the overlay
// networks (7.3). Only read calls: never the unlock-key endpoint.
func (s *Source) judgeSwarm(ctx context.Context, info swarm.Info) error {
	var out []findings.Finding
	if inSwarm(info) {
		out = append(out, findings.New("swarm.active", swarmSubject,
			fmt.Sprintf("swarm mode is %s on this engine (node %s, manager: %t)", info.LocalNodeState, info.NodeID, info.ControlAvailable)))
	}
	if inSwarm(info) && info.ControlAvailable {
		if n := info.Managers; n%2 == 0 || n > maxManagers {
			out = append(out, findings.New("swarm.managers", swarmSubject,
				fmt.Sprintf("the swarm has %d managers; keep an odd number, at most %d", n, maxManagers)).
				With("managers", strconv.Itoa(n)))
		}
		addrs, listenErr := s.swarmAddresses(info)
		out = append(out, addrs...)
		s.mu.Lock()
		s.swarmListenErr = ""
		if listenErr != nil {
			s.swarmListenErr = listenErr.Error()
		}
		s.mu.Unlock()
		autolock, err := s.judgeAutolock(ctx)
		if err != nil {
			return err
		}
		out = append(out, autolock...)
	}
	s.sink.Set(swarmScope, out)
	if err := s.judgeNetworks(ctx, inSwarm(info)); err != nil {
		return err
	}
	s.mu.Lock()
	s.swarmJudged = true
	s.mu.Unlock()
	return nil
}

// judgeAutolock judges auto-lock (7.5) from GET /swarm; an error other than
// a lost connection is kept for the report, and judged again at the next
// rescan.
func (s *Source) judgeAutolock(ctx context.Context) ([]findings.Finding, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	res, err := s.eng.SwarmInspect(ctx, client.SwarmInspectOptions{})
	cancel()
	if err != nil && connectionLost(err) {
		return nil, fmt.Errorf("swarm inspect: %w", err)
	}
	s.mu.Lock()
	s.swarmInspectErr = ""
	if err != nil {
		s.swarmInspectErr = err.Error()
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		s.log.Warn("could not read the swarm's settings; auto-lock is judged at the next rescan", zap.Error(err))
	case !res.Swarm.Spec.EncryptionConfig.AutoLockManagers:
		return []findings.Finding{findings.New("swarm.autolock_off", swarmSubject,
			"the swarm's managers are not auto-locked: their keys and Raft data are readable at rest")}, nil
	}
	return nil, nil
}

// swarmAddresses judges where the manager listens and what it advertises
// (CIS 7.2): neither may be every interface. The listen address is not in
// the Engine API, so it is read from dockerd's own TCP sockets.
func (s *Source) swarmAddresses(info swarm.Info) ([]findings.Finding, error) {
	port := ""
	for _, m := range info.RemoteManagers {
		if m.NodeID == info.NodeID {
			_, port, _ = net.SplitHostPort(m.Addr)
		}
	}
	var bad []string
	if ip := net.ParseIP(info.NodeAddr); ip != nil && ip.IsUnspecified() {
		bad = append(bad, "advertises "+info.NodeAddr)
	}
	var listenErr error
	if port == "" {
		listenErr = fmt.Errorf("the manager's own address is not among the swarm's managers %v", info.RemoteManagers)
	} else {
		var all []string
		all, listenErr = s.unspecifiedListeners(port)
		for _, a := range all {
			bad = append(bad, "listens on "+a)
		}
	}
	if len(bad) == 0 {
		return nil, listenErr
	}
	return []findings.Finding{findings.New("swarm.listen_all_interfaces", swarmSubject,
		"the swarm manager is not bound to one interface: "+strings.Join(bad, ", ")).With("addresses", strings.Join(bad, ","))}, listenErr
}

// unspecifiedListeners returns dockerd's TCP listeners on port that accept
// on every interface (0.0.0.0 or ::).
func (s *Source) unspecifiedListeners(port string) ([]string, error) {
	d, err := s.root.FindDockerd([]string{hostfs.DockerPIDFile}, "/var/run/docker.sock")
	if err != nil {
		return nil, fmt.Errorf("finding dockerd: %w", err)
	}
	ls, err := s.root.TCPListeners(d.PID)
	if err != nil {
		return nil, fmt.Errorf("reading dockerd's (pid %d) sockets: %w", d.PID, err)
	}
	var out []string
	for _, l := range ls {
		host, p, err := net.SplitHostPort(l)
		if ip := net.ParseIP(host); err == nil && p == port && ip != nil && ip.IsUnspecified() {
			out = append(out, l)
		}
	}
	return out, nil
}

// judgeNetworks reports every overlay network that is not encrypted (CIS
// 7.3), one finding per network, and drops the findings of networks that
// are gone.
func (s *Source) judgeNetworks(ctx context.Context, active bool) error {
	judged := map[string][]findings.Finding{}
	if active {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		res, err := s.eng.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("driver", "overlay")})
		cancel()
		if err != nil {
			return fmt.Errorf("list overlay networks: %w", err)
		}
		for _, n := range res.Items {
			judged[networkScopePrefix+n.ID] = judgeNetwork(n.Network)
		}
	}
	s.sink.Sync(networkScopePrefix, judged)
	return nil
}

func judgeNetwork(n network.Network) []findings.Finding {
	if n.Driver != "overlay" {
		return nil
	}
	if _, ok := n.Options["encrypted"]; ok {
		return nil
	}
	subj := findings.Subject{Kind: findings.KindDaemon, Name: n.Name}
	return []findings.Finding{findings.New("swarm.overlay_unencrypted", subj,
		"overlay network "+n.Name+" does not encrypt its traffic between nodes").With("network_id", n.ID).With("scope", n.Scope)}
}
