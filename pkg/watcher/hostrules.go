package watcher

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"syscall"

	"github.com/moby/moby/client/pkg/versions"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
	"github.com/dockward/dockward/pkg/watcher/daemonjson"
)

// hostFacts are what the host-side CIS checks judge (1.1.1, 1.1.2, 1.2.2,
// 4.5), gathered with the daemon's settings. An err field says why its fact
// could not be told; the rule then reports nothing and the check is
// observed as manual, never passed.
type hostFacts struct {
	dataRoot      string // Docker's root dir as judged (its parent under userns-remap)
	dataRootMount bool   // a filesystem is mounted there in the host's namespace
	dataRootErr   error

	group    hostfs.GroupMembers // who owns the API socket's group
	groupErr error
	trusted  []string // nil: no trusted_docker_users list configured

	minVersion string // host.minimum_docker_version; "" when not set

	contentTrust setting[bool] // DOCKER_CONTENT_TRUST=1 set for logins
}

// gatherHostFacts reads the host facts for in.
func (s *scanner) gatherHostFacts(in *daemonInputs) {
	h := &in.host
	h.trusted, h.minVersion = s.cfg.TrustedDockerUsers, s.cfg.MinimumDockerVersion
	h.dataRoot = in.dataRoot()
	h.dataRoot, h.dataRootMount, h.dataRootErr = s.fs.IsMountPoint(h.dataRoot)
	if h.dataRoot == "" {
		h.dataRoot = in.dataRoot()
	}
	h.group, h.groupErr = s.socketGroup(in.unixSockets()[0])
	h.contentTrust = s.contentTrust()
}

// dataRoot is Docker's root dir: GET /info's DockerRootDir, else data-root,
// else the default. Under userns-remap dockerd works in a subdirectory
// (/var/lib/docker/100000.100000); the partition is its parent's.
func (in *daemonInputs) dataRoot() string {
	root := in.stringSetting("data-root", func(c *daemonjson.Config) *string { return c.DataRoot }, "/var/lib/docker").v
	if in.info != nil && in.info.DockerRootDir != "" {
		root = in.info.DockerRootDir
		if _, remapped := in.info.SecurityOption("userns"); remapped {
			root = path.Dir(root)
		}
	}
	return path.Clean(root)
}

// socketGroup is the group that owns the API socket, with its members:
// everyone in it can run containers as root (CIS 1.1.2).
func (s *scanner) socketGroup(socket string) (hostfs.GroupMembers, error) {
	_, fi, err := s.fs.Stat(socket)
	if err != nil {
		return hostfs.GroupMembers{}, fmt.Errorf("stat %s: %w", socket, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return hostfs.GroupMembers{}, fmt.Errorf("stat %s: no owner information", socket)
	}
	return s.fs.Members(st.Gid)
}

// contentTrustFiles are where a host sets an environment variable for every
// login: pam_env's /etc/environment and the shells' profiles.
var contentTrustFiles = []string{"/etc/environment", "/etc/profile", "/etc/bash.bashrc"}

var contentTrustLine = regexp.MustCompile(`^\s*(export\s+)?DOCKER_CONTENT_TRUST\s*=\s*["']?1["']?\s*(#.*)?$`)

// contentTrust reports whether DOCKER_CONTENT_TRUST=1 is set for logins on
// the host (CIS 4.5), and in which file. Content trust is a client setting:
// the daemon cannot enforce it, the logins' environment can.
func (s *scanner) contentTrust() setting[bool] {
	files := append([]string{}, contentTrustFiles...)
	if ents, err := s.fs.ReadDir("/etc/profile.d"); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".sh") {
				files = append(files, "/etc/profile.d/"+e.Name())
			}
		}
	}
	for _, f := range files {
		data, err := s.fs.ReadFile(f, 1<<20)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if contentTrustLine.MatchString(line) {
				return setting[bool]{true, f}
			}
		}
	}
	return setting[bool]{false, strings.Join(contentTrustFiles, ", ") + ", /etc/profile.d/*.sh"}
}

// The host-side entries join the daemon rule table.
func init() { daemonRules = append(daemonRules, hostRules...) }

// hostRules are the daemon table's entries for the host-side checks (1.x,
// 4.5) and the section 2 checks added with them (2.1, 2.10, 2.11).
var hostRules = []daemonRule{
	{id: "daemon.data_root_shared", judge: judgeDataRoot},                                  // 1.1.1
	{id: "daemon.docker_group_untrusted", judge: judgeDockerGroup(true)},                   // 1.1.2
	{id: "daemon.docker_group_members", judge: judgeDockerGroup(false)},                    // 1.1.2
	{id: "daemon.version_old", judge: judgeVersion},                                        // 1.2.2
	boolRule("daemon.not_rootless", rootless, false, "dockerd runs as root, not rootless"), // 2.1
	settingRule("daemon.cgroup_parent", fileString("cgroup-parent", func(c *daemonjson.Config) *string { return c.CgroupParent }, ""), // 2.10
		func(s setting[string]) (violation, bool) {
			return violation{msg: "the daemon puts containers under a custom cgroup parent " + s.v, details: []string{"cgroup_parent", s.v}}, s.v != ""
		}),
	settingRule("daemon.dm_basesize", (*daemonInputs).deviceMapperBaseSize, func(s setting[string]) (violation, bool) { // 2.11
		return violation{msg: "the devicemapper base device size is changed: " + s.v, details: []string{"storage_opt", s.v}}, s.v != ""
	}),
	boolRule("daemon.content_trust_off", func(in *daemonInputs) setting[bool] { return in.host.contentTrust }, false, // 4.5
		"DOCKER_CONTENT_TRUST=1 is not set for logins on this host: docker pulls and runs unsigned images"),
}

func judgeDataRoot(in *daemonInputs) []findings.Finding {
	h := in.host
	if h.dataRootErr != nil || h.dataRootMount {
		return nil
	}
	return []findings.Finding{findings.New("daemon.data_root_shared", daemonSubject,
		"Docker's root dir "+h.dataRoot+" is not on a filesystem of its own: containers can fill the host's").
		With("data_root", h.dataRoot).With("setting_source", "/proc/1/mountinfo")}
}

// judgeDockerGroup judges the socket group's members: with a trusted list,
// those not on it (untrusted); without one, all of them, as info, so that
// they are named.
func judgeDockerGroup(untrusted bool) func(*daemonInputs) []findings.Finding {
	return func(in *daemonInputs) []findings.Finding {
		h := in.host
		if h.groupErr != nil || (h.trusted != nil) != untrusted {
			return nil
		}
		var who []string
		for _, u := range h.group.All() {
			if !containsString(h.trusted, u) {
				who = append(who, u)
			}
		}
		if len(who) == 0 {
			return nil
		}
		if untrusted {
			return []findings.Finding{findings.New("daemon.docker_group_untrusted", daemonSubject,
				fmt.Sprintf("users not in trusted_docker_users can control dockerd (group %s): %s", h.group.Name, strings.Join(who, ", "))).
				With("group", h.group.Name).With("users", strings.Join(who, ","))}
		}
		return []findings.Finding{findings.New("daemon.docker_group_members", daemonSubject,
			fmt.Sprintf("these users can control dockerd through group %s (root-equivalent): %s", h.group.Name, strings.Join(who, ", "))).
			With("group", h.group.Name).With("users", strings.Join(who, ","))}
	}
}

// serverVersionRe takes the release out of a ServerVersion such as
// "20.10.24+dfsg1" or "24.0.7-ce".
var serverVersionRe = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*`)

func judgeVersion(in *daemonInputs) []findings.Finding {
	if in.info == nil || in.host.minVersion == "" {
		return nil
	}
	v := serverVersionRe.FindString(in.info.ServerVersion)
	if v == "" || !versions.LessThan(v, in.host.minVersion) {
		return nil
	}
	return []findings.Finding{findings.New("daemon.version_old", daemonSubject,
		fmt.Sprintf("Docker %s is older than the minimum %s", in.info.ServerVersion, in.host.minVersion)).
		With("server_version", in.info.ServerVersion).With("minimum", in.host.minVersion)}
}

// rootless is 2.1's setting; only GET /info tells it (name=rootless).
func rootless(in *daemonInputs) setting[bool] {
	if in.info == nil {
		return setting[bool]{true, "unknown without GET /info"} // no judgement
	}
	return infoHasOption("rootless")(in.info)
}

// deviceMapperBaseSize is 2.11's setting: the dm.basesize storage option,
// which only the devicemapper driver has.
func (in *daemonInputs) deviceMapperBaseSize() setting[string] {
	driver := in.stringSetting("storage-driver", func(c *daemonjson.Config) *string { return c.StorageDriver }, "")
	if in.info != nil {
		driver = setting[string]{in.info.Driver, "GET /info (Driver)"}
	}
	if driver.v != "devicemapper" {
		return setting[string]{"", driver.from}
	}
	opts := in.listSetting("storage-opt", func(c *daemonjson.Config) []string { return c.StorageOpts })
	for _, o := range opts.v {
		if k, _, _ := strings.Cut(o, "="); strings.TrimSpace(k) == "dm.basesize" {
			return setting[string]{o, opts.from}
		}
	}
	return setting[string]{"", opts.from}
}

// hostObservations say which of the host's checks could not be judged this
// time, and which file checks (3.x) concern nothing this host has.
func hostObservations(in *daemonInputs, rules []fileRule) map[string]findings.Observation {
	out := map[string]findings.Observation{}
	manual := func(check, why string) { out[check] = findings.Observation{Status: findings.StatusManual, Note: why} }
	if err := in.host.dataRootErr; err != nil {
		manual("1.1.1", "whether "+in.host.dataRoot+" is its own filesystem could not be read: "+err.Error())
	}
	if err := in.host.groupErr; err != nil {
		manual("1.1.2", "the API socket's group could not be read: "+err.Error())
	}
	switch {
	case in.host.minVersion == "":
		v := "unknown"
		if in.info != nil {
			v = in.info.ServerVersion
		}
		manual("1.2.2", "dockerd runs "+v+"; set host.minimum_docker_version to judge it")
	case in.info == nil:
		manual("1.2.2", "the daemon's version is unknown without GET /info")
	}
	if in.info == nil {
		manual("2.1", "whether dockerd is rootless is unknown without GET /info")
	}
	if why := daemonUnseen(in); why != "" {
		for _, id := range daemonTableChecks() {
			if _, said := out[id]; !said {
				manual(id, why)
			}
		}
	}
	covered := map[string]bool{}
	for _, r := range rules {
		covered[r.CISOwner], covered[r.CISMode] = true, true
	}
	for i := 1; i <= 24; i++ {
		if id := fmt.Sprintf("3.%d", i); !covered[id] {
			out[id] = findings.Observation{Status: findings.StatusNotApplicable, Note: "no such file on this host"}
		}
	}
	return out
}

// daemonUnseen says why the daemon's settings were not judged this time
// (the scanner then keeps the last judgement of a daemon it could see),
// or "" when they were.
func daemonUnseen(in *daemonInputs) string {
	const kept = "; the findings of the last judgement of a visible dockerd stay open"
	switch {
	case in.proc == nil && in.info == nil:
		return "not judged: no running dockerd was found and GET /info did not answer, so the daemon's settings are unknown" + kept
	case in.configUnreadable:
		return "not judged: " + in.configPath + " exists but could not be read, so the daemon's settings are unknown" + kept
	}
	return ""
}

// daemonTableChecks are the checks of the daemon rule table's rules (the
// daemon's settings and the host facts judged with them).
func daemonTableChecks() []string {
	ids := map[string]bool{}
	for _, r := range daemonRules {
		ids[r.id] = true
	}
	return findings.ChecksJudgedBy(func(r findings.Rule) bool { return ids[r.ID] })
}

// unreadableFile observes a file's checks as manual when the file could
// not be judged this time (it keeps its last judgement).
func unreadableFile(out map[string]findings.Observation, r fileRule, err error) {
	for _, id := range []string{r.CISOwner, r.CISMode} {
		if id != "" {
			out[id] = findings.Observation{Status: findings.StatusManual, Note: "not judged: " + r.Path + " could not be read: " + err.Error()}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
