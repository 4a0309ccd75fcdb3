package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
	"github.com/dockward/dockward/pkg/watcher/daemonjson"
)

type daemonConfig = daemonjson.Config

// scanner judges the host once per call to scan. It is used from one
// goroutine at a time (the Source serialises calls).
type scanner struct {
	cfg    Config
	fs     hostfs.Root
	docker DockerAPI
	sink   findings.Sink
	log    *zap.Logger
	m      *metrics
	now    func() time.Time

	// Binary integrity: the digests of Docker's binaries, their first
	// hashes kept in StateDir, and the package manager's checksums.
	hashes   *hashCache
	baseline *baselineStore
	pkgs     *packageDB

	states map[string]fileState // last state of each watched path

	// notes are the problems logged so far, by key; a problem is logged
	// when it appears or changes, never on every rescan.
	notes, curNotes map[string]string

	// lastDaemon is the last judgement of a daemon that could be seen.
	lastDaemon []findings.Finding

	pid atomic.Int64
	// reloadInfo is GET /info as fetched on a daemon reload, for the next
	// scan to judge instead of fetching it again.
	reloadInfo atomic.Pointer[dockerinfo.Info]
	// observations are the last scan's compliance observations.
	observations atomic.Pointer[map[string]findings.Observation]
	watched      []watchedPath
}

// watchedPath is one path the Run loop watches through its parent.
type watchedPath struct {
	path string // host path
	tree bool   // any change below it counts (certs.d)
	// absent: a path the rules would judge that does not exist yet; its
	// parent is watched so that its creation is judged at once, but it has
	// no change series until it exists.
	absent bool
}

func newScanner(cfg Config, host hostfs.Root, docker DockerAPI, sink findings.Sink, log *zap.Logger, m *metrics) *scanner {
	s := &scanner{
		cfg: cfg, fs: host, docker: docker, sink: sink, log: log, m: m, now: time.Now,
		hashes: newHashCache(host), states: map[string]fileState{},
		notes: map[string]string{}, curNotes: map[string]string{},
	}
	s.baseline = &baselineStore{dir: cfg.StateDir, log: log, countError: s.countError}
	s.pkgs = &packageDB{root: host, rpmCommand: "rpm", problem: func(key, msg string, err error) {
		s.countError(reasonPackageDB)
		s.logOnce(key, msg, logErr(err))
	}}
	return s
}

// scan judges the daemon, the files and the binaries, and replaces the
// source's findings with the result.
func (s *scanner) scan(ctx context.Context) {
	start := s.now()
	s.curNotes = map[string]string{}
	in := s.gatherDaemon(ctx)
	judged := map[string][]findings.Finding{"daemon": s.judgeDaemonOrKeep(in)}
	var keep []string // scopes left as they were because they could not be judged
	var watched []watchedPath

	ids := s.fs.LoadIDs()
	rules := s.discoverFiles(in)
	obs := hostObservations(in, rules)
	for _, r := range rules {
		scope := "file:" + r.Path
		watched = append(watched, watchedPath{path: r.Path})
		found, st, err := s.judgeFile(r, ids)
		if st != nil {
			s.observe(r.Path, *st)
		}
		if err != nil {
			s.scanError(r.Path, err)
			keep = append(keep, scope)
			unreadableFile(obs, r, err)
			continue
		}
		if _, okU, _, okG := expectedOwner(r, ids); (!okU || !okG) && r.CISOwner != "" && st != nil {
			obs[r.CISOwner] = findings.Observation{Status: findings.StatusManual,
				Note: "not judged: the expected owner " + r.Owner + ":" + r.Group + " of " + r.Path + " is not a user or group on this host"}
		}
		judged[scope] = found
	}
	s.observations.Store(&obs)
	watched = append(watched, watchedPath{path: "/etc/docker/certs.d", tree: true})
	for _, u := range hostfs.UnitDirs {
		watched = append(watched, watchedPath{path: u + "/docker.service.d", tree: true}, watchedPath{path: u + "/docker.socket.d", tree: true})
	}
	watched = append(watched, absentCandidates(in, judged)...)
	bins := s.discoverBinaries(in)
	for b, found := range s.judgeBinaries(bins, start) {
		judged[binaryScope(b)] = found
	}
	for _, b := range bins {
		watched = append(watched, watchedPath{path: b})
		if _, ok := judged[binaryScope(b)]; !ok {
			keep = append(keep, binaryScope(b))
		}
	}
	s.sink.Sync("", judged, keep...) // a path that is gone or no longer in use is resolved
	present := 0
	for _, w := range watched {
		if !w.absent {
			present++
		}
		if !w.tree && !w.absent {
			s.m.changes.WithLabelValues(w.path)
		}
	}
	s.watched = watched
	s.endNotes()
	end := s.now()
	s.m.scans.Inc()
	s.m.lastScan.Set(float64(end.UnixNano()) / 1e9)
	s.m.duration.Set(end.Sub(start).Seconds())
	s.m.watched.Set(float64(present))
}

// absentCandidates are the files the rules would judge that are not there
// now (daemon.json, the environment files, unit files, sockets): creating
// one, say a new daemon.json, must be judged at once, not at the next
// periodic rescan.
func absentCandidates(in *daemonInputs, judged map[string][]findings.Finding) []watchedPath {
	candidates := []string{in.configPath, "/etc/default/docker", "/etc/sysconfig/docker", defaultContainerd}
	for _, u := range hostfs.UnitDirs {
		candidates = append(candidates, u+"/docker.service", u+"/docker.socket")
	}
	candidates = append(candidates, in.unixSockets()...)
	var out []watchedPath
	for _, p := range candidates {
		if _, ok := judged["file:"+p]; !ok {
			out = append(out, watchedPath{path: p, absent: true})
		}
	}
	return out
}

// judgeDaemonOrKeep judges the daemon's settings when the daemon can be
// seen (its process or its API). When it cannot (Docker stopped, or not
// installed), dockerd's defaults say nothing about this host: the last
// judgement of a seen daemon is kept, and only daemon.json itself is judged.
// The same holds while daemon.json cannot be read.
func (s *scanner) judgeDaemonOrKeep(in *daemonInputs) []findings.Finding {
	all := judgeDaemon(in)
	if (in.proc != nil || in.info != nil) && !in.configUnreadable {
		s.lastDaemon = nil
		for _, f := range all {
			if f.Rule != "daemon.config_invalid" {
				s.lastDaemon = append(s.lastDaemon, f)
			}
		}
		return all
	}
	out := append([]findings.Finding{}, s.lastDaemon...)
	for _, f := range all {
		if f.Rule == "daemon.config_invalid" {
			out = append(out, f)
		}
	}
	return out
}

// gatherDaemon collects the daemon's effective settings: daemon.json, the
// running process's flags and sockets, and GET /info.
func (s *scanner) gatherDaemon(ctx context.Context) *daemonInputs {
	in := &daemonInputs{configPath: defaultDaemonJSON, flags: dockerdFlags{}}
	s.readDaemonJSON(in)
	pidfiles := []string{hostfs.DockerPIDFile}
	if in.config != nil && in.config.Pidfile != nil {
		pidfiles = append([]string{*in.config.Pidfile}, pidfiles...)
	}
	socket := in.unixSockets()[0]
	proc, err := s.fs.FindDockerd(pidfiles, socket)
	if err != nil {
		s.note("dockerd", reasonDockerdNotFound, "the running dockerd was not found; judging daemon.json and defaults only", zap.Error(err))
		s.pid.Store(0)
	} else {
		in.proc = proc
		s.pid.Store(int64(proc.PID))
		if len(proc.Args) > 1 {
			in.flags = parseDockerdFlags(proc.Args[1:])
		}
		if cf, ok := in.flags.last("config-file"); ok && path.Clean(cf) != in.configPath {
			in.configPath = path.Clean(cf)
			s.readDaemonJSON(in)
		}
		if l, err := s.fs.TCPListeners(proc.PID); err == nil {
			in.tcpListeners = l
		}
	}
	s.gatherInfo(ctx, in)
	s.gatherHostFacts(in)
	return in
}

// gatherInfo reads GET /info, unless a daemon reload handed it over
// already fetched, and the default bridge's options.
func (s *scanner) gatherInfo(ctx context.Context, in *daemonInputs) {
	in.info = s.reloadInfo.Swap(nil)
	if s.docker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if in.info == nil {
		res, err := s.docker.Info(ctx, client.InfoOptions{})
		if err != nil {
			s.note("docker_info", reasonDockerInfo, "GET /info failed; judging from the process flags and daemon.json", zap.Error(err))
			return
		}
		in.info = dockerinfo.Parse(&res.Info)
	}
	net, err := s.docker.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err != nil {
		return // no default bridge (--bridge=none): icc falls back to the settings
	}
	if v, ok := net.Network.Options[bridgeICCOption]; ok {
		if b, err := strconv.ParseBool(v); err == nil {
			in.bridgeICC = &b
		}
	}
}

// readDaemonJSON reads and strictly parses in.configPath into in.
func (s *scanner) readDaemonJSON(in *daemonInputs) {
	in.config, in.configErr, in.configPresent, in.configUnreadable = nil, nil, false, false
	data, err := s.fs.ReadFile(in.configPath, daemonjson.MaxSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil && errorReason(err) == reasonSymlinkLoop:
		// dockerd cannot read it either, so it will not start.
		in.configPresent = true
		in.configErr = fmt.Errorf("cannot be read: %w", err)
		s.scanError(in.configPath, err)
		return
	case err != nil:
		// Unreadable to us but maybe not to dockerd: the settings it holds
		// are unknown, so the last judgement stands.
		in.configUnreadable = true
		s.scanError(in.configPath, err)
		return
	}
	in.configPresent = true
	cfg, err := daemonjson.Parse(data)
	if err != nil {
		in.configErr = err
		s.note("daemon_json:"+in.configPath, reasonDaemonJSON, "daemon.json is invalid; dockerd will not start with it",
			zap.String("path", in.configPath), zap.Error(err))
		return
	}
	in.config = cfg
}

// observe records a path's state and counts a change from the last scan.
func (s *scanner) observe(p string, st fileState) {
	if prev, ok := s.states[p]; ok && prev != st {
		s.m.changes.WithLabelValues(p).Inc()
		s.log.Info("watched file changed", zap.String("path", p))
	}
	s.states[p] = st
}

// scanError counts an error reading path p and logs it once.
func (s *scanner) scanError(p string, err error) {
	reason := errorReason(err)
	s.note("path:"+p, reason, "cannot judge path", zap.String("path", p), zap.Error(err))
}

// countError counts without logging (the caller logs).
func (s *scanner) countError(reason string) { s.m.errors.WithLabelValues(reason).Inc() }

// note counts a problem on every scan that meets it, and logs it when it
// is new or different from the last scan's.
func (s *scanner) note(key, reason, msg string, fields ...zap.Field) {
	if _, again := s.curNotes[key]; again {
		return // one path read twice in a scan is one problem
	}
	s.countError(reason)
	text := msg
	for _, f := range fields {
		if f.Key == "error" {
			if e, ok := f.Interface.(error); ok {
				text += ": " + e.Error()
			}
		}
	}
	s.curNotes[key] = text
	if s.notes[key] != text {
		s.notes[key] = text
		s.log.Warn(msg, append(fields, zap.String("reason", reason))...)
	}
}

// logOnce logs a problem already counted, once while it lasts.
func (s *scanner) logOnce(key, msg string, fields ...zap.Field) {
	s.curNotes[key] = msg
	if s.notes[key] != msg {
		s.notes[key] = msg
		s.log.Warn(msg, fields...)
	}
}

// endNotes forgets problems that did not recur, logging that they cleared.
func (s *scanner) endNotes() {
	for key := range s.notes {
		if _, ok := s.curNotes[key]; !ok {
			delete(s.notes, key)
			if p, ok := strings.CutPrefix(key, "path:"); ok {
				s.log.Info("path can be judged again", zap.String("path", p))
			}
		}
	}
}

func logPath(p string) zap.Field      { return zap.String("path", p) }
func logErr(err error) zap.Field      { return zap.Error(err) }
func logString(k, v string) zap.Field { return zap.String(k, v) }
