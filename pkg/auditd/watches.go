package auditd

import (
	"path/filepath"
	"slices"

	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/hostfs"
)

// WatchKind says what a watched path is, which sets how loudly an
// unexpected write to it is logged.
type WatchKind string

const (
	KindConfig WatchKind = "config" // configuration: warn
	KindBinary WatchKind = "binary" // an executable: error
	KindData   WatchKind = "data"   // runtime state: warn
)

// Watch is one kernel audit watch on a Docker path.
type Watch struct {
	// Path is the host path as the kernel resolves it (outside any rootfs).
	Path string
	Key  string
	Kind WatchKind
	// CIS is the CIS Docker Benchmark check of the watch (1.1.x); empty
	// for watches from config.
	CIS string
	// Expected are the executables (absolute paths as the kernel reports
	// them in exe=) whose writes are routine for this watch.
	Expected []string
}

// rule is the kernel rule part of the watch.
func (w Watch) rule() rules.Watch { return rules.Watch{Path: w.Path, Key: w.Key} }

// kernelRule is the rule dockward adds for the watch: on the path as this
// process sees the host's (host.Local), because the kernel resolves a
// watch's path in the mount namespace of the process that adds it, and an
// agent in a container has the host's / at its rootfs (/host/etc/docker for
// /etc/docker). The kernel then matches the watch by the directory's inode
// and the name, so events still carry the host's own paths.
func (w Watch) kernelRule(host hostfs.Root) rules.Watch {
	return rules.Watch{Path: host.Local(w.Path), Key: w.Key}
}

// ruleWatches is the kernel rule part of every watch, in order.
func ruleWatches(ws []Watch) []rules.Watch {
	out := make([]rules.Watch, len(ws))
	for i, w := range ws {
		out[i] = w.rule()
	}
	return out
}

// builtinWatch describes one CIS 1.1.x watch before its path is resolved.
// Candidates are tried in order; binaries are looked up by name.
type builtinWatch struct {
	Key        string
	Kind       WatchKind
	CIS        string
	Binary     string   // program name to find in hostfs.BinDirs
	Candidates []string // absolute paths; every existing one is watched
	// InEveryDir watches every candidate whose directory exists, present
	// or not: a drop-in directory can be created in any unit directory.
	InEveryDir bool
	Expected   []string // default expected writers (program names)
}

// daemonWriters are the programs whose writes to Docker's state are routine:
// the daemons, the runtime, the shims, and the storage driver's helper
// (fuse-overlayfs writes every layer of a container under /var/lib/docker).
var daemonWriters = []string{"dockerd", "containerd", "runc", "containerd-shim", "containerd-shim-runc-v1",
	"containerd-shim-runc-v2", "fuse-overlayfs"}

// builtinWatches is the CIS Docker Benchmark 1.1.3-1.1.18 set plus the
// docker CLI, specific files before their directories: the kernel stops at
// the first matching rule, so that rule's key is the one events carry.
var builtinWatches = []builtinWatch{
	{Key: "docker_bin", Kind: KindBinary, CIS: "1.1.3", Binary: "dockerd"},
	{Key: "containerd_sock", Kind: KindData, CIS: "1.1.8", Candidates: []string{
		"/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock"},
		Expected: []string{"containerd", "dockerd"}},
	{Key: "containerd_run", Kind: KindData, CIS: "1.1.4", Candidates: []string{"/run/containerd"}, Expected: daemonWriters},
	{Key: "docker_lib", Kind: KindData, CIS: "1.1.5", Candidates: []string{"/var/lib/docker"}, Expected: daemonWriters},
	{Key: "docker_daemon_json", Kind: KindConfig, CIS: "1.1.11", Candidates: []string{"/etc/docker/daemon.json"}},
	{Key: "docker_etc", Kind: KindConfig, CIS: "1.1.6", Candidates: []string{"/etc/docker"}},
	{Key: "docker_service", Kind: KindConfig, CIS: "1.1.7", Candidates: hostfs.UnitPaths("docker.service")},
	{Key: "docker_socket_unit", Kind: KindConfig, CIS: "1.1.9", Candidates: hostfs.UnitPaths("docker.socket")},
	// Drop-ins override the units (ExecStart, the daemon's flags), in every
	// unit directory the host source searches too; they are part of the
	// unit the benchmark's check names.
	{Key: "docker_service", Kind: KindConfig, CIS: "1.1.7", Candidates: hostfs.UnitPaths("docker.service.d"), InEveryDir: true},
	{Key: "docker_socket_unit", Kind: KindConfig, CIS: "1.1.9", Candidates: hostfs.UnitPaths("docker.socket.d"), InEveryDir: true},
	{Key: "docker_default", Kind: KindConfig, CIS: "1.1.10", Candidates: []string{"/etc/default/docker"}},
	{Key: "containerd_config", Kind: KindConfig, CIS: "1.1.12", Candidates: []string{"/etc/containerd/config.toml"}},
	{Key: "docker_sysconfig", Kind: KindConfig, CIS: "1.1.13", Candidates: []string{"/etc/sysconfig/docker"}},
	{Key: "containerd_bin", Kind: KindBinary, CIS: "1.1.14", Binary: "containerd"},
	{Key: "containerd_shim_bin", Kind: KindBinary, CIS: "1.1.15", Binary: "containerd-shim"},
	{Key: "containerd_shim_bin", Kind: KindBinary, CIS: "1.1.16", Binary: "containerd-shim-runc-v1"},
	{Key: "containerd_shim_bin", Kind: KindBinary, CIS: "1.1.17", Binary: "containerd-shim-runc-v2"},
	{Key: "runc_bin", Kind: KindBinary, CIS: "1.1.18", Binary: "runc"},
	{Key: "docker_cli_bin", Kind: KindBinary, CIS: "1.1", Binary: "docker"},
}

// resolver finds watched paths on the host, as the kernel will see them.
type resolver struct{ host hostfs.Root }

// real returns the path with symlinks resolved inside the host's root, as
// the kernel resolves it, and whether it exists.
func (r resolver) real(p string) (string, bool) {
	res, err := r.host.Resolve(p)
	if err != nil {
		return p, false
	}
	return res, true
}

// writers turns expected-writer entries (absolute paths or names) into
// executable paths.
func (r resolver) writers(entries []string) []string {
	var out []string
	for _, e := range entries {
		if filepath.IsAbs(e) {
			if p, ok := r.real(e); ok {
				e = p
			}
			out = append(out, e)
			continue
		}
		if p, ok := r.host.FindProgram(e); ok {
			out = append(out, p)
		}
	}
	return out
}

// ResolveWatches builds the watch list for cfg on host: the built-in set
// resolved there, then the configured extra watches. A path that does not
// exist is still listed when its parent does, so a file created later is
// audited from its first write; missing binaries are left out.
func ResolveWatches(cfg Config, host hostfs.Root) []Watch {
	r := resolver{host: host}
	seen := map[string]bool{}
	var out []Watch
	add := func(path, key, cis string, kind WatchKind, expected []string) {
		if seen[path] {
			return
		}
		seen[path] = true
		if ew, ok := cfg.ExpectedWriters[key]; ok {
			expected = ew
		}
		out = append(out, Watch{Path: path, Key: key, CIS: cis, Kind: kind, Expected: r.writers(expected)})
	}
	for _, b := range builtinWatches {
		if b.Binary != "" {
			if p, ok := host.FindProgram(b.Binary); ok {
				add(p, b.Key, b.CIS, b.Kind, b.Expected)
			}
			continue
		}
		candidates := b.Candidates
		if b.Key == "docker_daemon_json" {
			candidates = daemonJSONCandidates(host, candidates)
		}
		found := false
		for _, c := range candidates {
			if p, ok := r.real(c); ok {
				add(p, b.Key, b.CIS, b.Kind, b.Expected)
				found = true
			} else if b.InEveryDir {
				found = r.addMissing(c, func(p string) { add(p, b.Key, b.CIS, b.Kind, b.Expected) }) || found
			}
		}
		if !found {
			// Watch the first candidate if its directory exists, so the
			// file is audited from the moment it is created.
			r.addMissing(candidates[0], func(p string) { add(p, b.Key, b.CIS, b.Kind, b.Expected) })
		}
	}
	for _, w := range cfg.Watches {
		p, _ := r.real(w.Path)
		add(p, w.Key, "", w.Kind, nil)
	}
	return orderWatches(out)
}

// addMissing watches a path that does not exist yet when its directory
// does, reporting whether it did.
func (r resolver) addMissing(c string, add func(string)) bool {
	dir, ok := r.real(filepath.Dir(c))
	if ok {
		add(filepath.Join(dir, filepath.Base(c)))
	}
	return ok
}

// daemonJSONCandidates puts the file the running dockerd reads by
// --config-file first, when it names one: that, not /etc/docker/daemon.json,
// is its configuration.
func daemonJSONCandidates(host hostfs.Root, candidates []string) []string {
	d, err := host.FindDockerd([]string{hostfs.DockerPIDFile}, hostfs.DockerSocket)
	if err != nil || d == nil {
		return candidates
	}
	if cf := d.ConfigFile(); cf != "" && !slices.Contains(candidates, cf) {
		return append([]string{cf}, candidates...)
	}
	return candidates
}

// orderWatches puts every path before any watched directory that contains
// it, keeping the given order otherwise, because the first matching kernel
// rule sets the event's key.
func orderWatches(ws []Watch) []Watch {
	out := make([]Watch, 0, len(ws))
	placed := make([]bool, len(ws))
	var place func(i int)
	place = func(i int) {
		if placed[i] {
			return
		}
		placed[i] = true
		for j := range ws {
			if j != i && !placed[j] && rules.Under(ws[j].Path, ws[i].Path) {
				place(j)
			}
		}
		out = append(out, ws[i])
	}
	for i := range ws {
		place(i)
	}
	return out
}
