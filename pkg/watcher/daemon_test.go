package watcher

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
	"github.com/dockward/dockward/pkg/watcher/daemonjson"
)

// hardenedJSON passes every daemon rule that daemon.json can satisfy.
const hardenedJSON = `{
  "icc": false, "log-level": "info", "iptables": true,
  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
  "userns-remap": "default", "authorization-plugins": ["authz-broker"],
  "log-driver": "syslog", "no-new-privileges": true, "live-restore": true,
  "userland-proxy": false
}`

// hardenedInfo is GET /info of a daemon that passes every /info rule.
func hardenedInfo() *system.Info {
	return &system.Info{
		Driver:             "overlay2",
		LoggingDriver:      "syslog",
		LiveRestoreEnabled: true,
		SecurityOptions:    []string{"name=seccomp,profile=default", "name=userns", "name=rootless"},
		Plugins:            system.PluginsInfo{Authorization: []string{"authz-broker"}},
		RegistryConfig: &registry.ServiceConfig{
			InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			IndexConfigs:          map[string]*registry.IndexInfo{"docker.io": {Name: "docker.io", Secure: true}},
		},
	}
}

func inputs(t *testing.T, js string, info *system.Info, args ...string) *daemonInputs {
	t.Helper()
	in := &daemonInputs{configPath: defaultDaemonJSON, info: dockerinfo.Parse(info), flags: parseDockerdFlags(args),
		host: hardenedHost()}
	if js != "" {
		cfg, err := daemonjson.Parse([]byte(js))
		if err != nil {
			in.configErr = err
		} else {
			in.config = cfg
		}
	}
	return in
}

// hardenedHost passes the host-side checks: Docker's root dir is its own
// filesystem, the socket's group is empty, content trust is on.
func hardenedHost() hostFacts {
	return hostFacts{dataRoot: "/var/lib/docker", dataRootMount: true, group: hostfs.GroupMembers{Name: "docker", GID: 999},
		contentTrust: setting[bool]{true, "/etc/environment"}}
}

// withHost changes in's host facts.
func withHost(in *daemonInputs, mut func(*hostFacts)) *daemonInputs {
	mut(&in.host)
	return in
}

func ruleSet(fs []findings.Finding) map[string]findings.Finding {
	out := map[string]findings.Finding{}
	for _, f := range fs {
		out[f.Rule] = f
	}
	return out
}

func TestHardenedDaemonHasNoFindings(t *testing.T) {
	for name, in := range map[string]*daemonInputs{
		"daemon.json only":    inputs(t, hardenedJSON, nil),
		"daemon.json + /info": inputs(t, hardenedJSON, hardenedInfo()),
	} {
		if fs := judgeDaemon(in); len(fs) != 0 {
			var rules []string
			for _, f := range fs {
				rules = append(rules, f.Rule+": "+f.Message)
			}
			t.Errorf("%s: unexpected findings:\n%s", name, strings.Join(rules, "\n"))
		}
	}
}

// daemonRuleCase triggers one daemon rule; from is the expected
// setting_source substring.
type daemonRuleCase struct {
	name string
	rule string
	in   *daemonInputs
	from string
}

func withJSON(kv string) string { return strings.Replace(hardenedJSON, "{", "{"+kv+",", 1) }

func withInfo(mut func(*system.Info)) *system.Info { i := hardenedInfo(); mut(i); return i }

// TestDaemonRules triggers each daemon rule from a hardened baseline, by
// daemon.json, by flag, and by /info, and checks nothing else fires.
func TestDaemonRules(t *testing.T) {
	for _, c := range append(daemonSettingCases(t), daemonHostCases(t)...) {
		t.Run(c.name, func(t *testing.T) { checkDaemonRule(t, c) })
	}
}

// daemonSettingCases are the rules judged from dockerd's settings.
func daemonSettingCases(t *testing.T) []daemonRuleCase {
	return []daemonRuleCase{
		{"icc default on", "daemon.icc_enabled", inputs(t, strings.Replace(hardenedJSON, `"icc": false,`, "", 1), nil), "dockerd default"},
		{"icc flag", "daemon.icc_enabled", inputs(t, strings.Replace(hardenedJSON, `"icc": false,`, "", 1), nil, "--icc=true"), "flag --icc"},
		{"log level debug", "daemon.log_level", inputs(t, strings.Replace(hardenedJSON, `"log-level": "info"`, `"log-level": "debug"`, 1), nil), "daemon.json"},
		{"log level -D", "daemon.log_level", inputs(t, hardenedJSON, nil, "-D"), "debug mode"},
		{"log level /info Debug", "daemon.log_level", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.Debug = true })), "GET /info"},
		{"log level flag", "daemon.log_level", inputs(t, strings.Replace(hardenedJSON, `"log-level": "info",`, "", 1), nil, "-l", "warn"), "flag --log-level"},
		{"iptables off", "daemon.iptables_disabled", inputs(t, strings.Replace(hardenedJSON, `"iptables": true`, `"iptables": false`, 1), nil), "daemon.json"},
		{"iptables flag off", "daemon.iptables_disabled", inputs(t, strings.Replace(hardenedJSON, `"iptables": true,`, "", 1), nil, "--iptables=false"), "flag --iptables"},
		{"insecure registry json", "daemon.insecure_registry", inputs(t, withJSON(`"insecure-registries": ["reg.local:5000"]`), nil), "daemon.json"},
		{"insecure registry /info", "daemon.insecure_registry", inputs(t, hardenedJSON, withInfo(func(i *system.Info) {
			i.RegistryConfig.IndexConfigs["reg.local:5000"] = &registry.IndexInfo{Name: "reg.local:5000", Secure: false}
		})), "GET /info"},
		{"insecure CIDR /info", "daemon.insecure_registry", inputs(t, hardenedJSON, withInfo(func(i *system.Info) {
			i.RegistryConfig.InsecureRegistryCIDRs = append(i.RegistryConfig.InsecureRegistryCIDRs, netip.MustParsePrefix("10.0.0.0/8"))
		})), "GET /info"},
		{"aufs /info", "daemon.aufs_driver", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.Driver = "aufs" })), "GET /info"},
		{"aufs json", "daemon.aufs_driver", inputs(t, withJSON(`"storage-driver": "aufs"`), nil), "daemon.json"},
		{"tcp json", "daemon.tcp_without_tls", inputs(t, withJSON(`"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]`), nil), "configured hosts"},
		{"tcp flag no scheme", "daemon.tcp_without_tls", inputs(t, hardenedJSON, nil, "-H", "0.0.0.0:2375", "--tls"), "configured hosts"},
		{"no ulimits", "daemon.no_default_ulimits", inputs(t, strings.Replace(hardenedJSON, `"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},`, "", 1), nil), "dockerd default"},
		{"no userns /info", "daemon.no_userns_remap", inputs(t, hardenedJSON, withInfo(func(i *system.Info) {
			i.SecurityOptions = []string{"name=seccomp,profile=default", "name=rootless"}
		})), "GET /info"},
		{"no userns json", "daemon.no_userns_remap", inputs(t, strings.Replace(hardenedJSON, `"userns-remap": "default",`, "", 1), nil), "dockerd default"},
		{"no authz /info", "daemon.no_authz_plugin", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.Plugins.Authorization = nil })), "GET /info"},
		{"no authz json", "daemon.no_authz_plugin", inputs(t, strings.Replace(hardenedJSON, `"authorization-plugins": ["authz-broker"],`, "", 1), nil), "dockerd default"},
		{"json-file /info", "daemon.local_log_driver", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.LoggingDriver = "json-file" })), "GET /info"},
		{"local json", "daemon.local_log_driver", inputs(t, strings.Replace(hardenedJSON, `"syslog"`, `"local"`, 1), nil), "daemon.json"},
		{"nnp off", "daemon.no_new_privileges_default", inputs(t, strings.Replace(hardenedJSON, `"no-new-privileges": true`, `"no-new-privileges": false`, 1), nil), "daemon.json"},
		{"live restore /info", "daemon.live_restore_off", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.LiveRestoreEnabled = false })), "GET /info"},
		{"live restore json", "daemon.live_restore_off", inputs(t, strings.Replace(hardenedJSON, `"live-restore": true`, `"live-restore": false`, 1), nil), "daemon.json"},
		{"userland proxy default", "daemon.userland_proxy", inputs(t, strings.Replace(hardenedJSON, `,
  "userland-proxy": false`, "", 1), nil), "dockerd default"},
		{"userland proxy flag", "daemon.userland_proxy", inputs(t, strings.Replace(hardenedJSON, `,
  "userland-proxy": false`, "", 1), nil, "--userland-proxy"), "flag --userland-proxy"},
		{"seccomp unconfined /info", "daemon.seccomp_profile", inputs(t, hardenedJSON, withInfo(func(i *system.Info) {
			i.SecurityOptions[0] = "name=seccomp,profile=unconfined"
		})), "GET /info"},
		{"seccomp absent /info", "daemon.seccomp_profile", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.SecurityOptions = i.SecurityOptions[1:] })), "GET /info"},
		{"seccomp json", "daemon.seccomp_profile", inputs(t, withJSON(`"seccomp-profile": "/etc/docker/seccomp.json"`), nil), "daemon.json"},
		{"experimental /info", "daemon.experimental", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.ExperimentalBuild = true })), "GET /info"},
		{"experimental json", "daemon.experimental", inputs(t, withJSON(`"experimental": true`), nil), "daemon.json"},
		{"invalid json", "daemon.config_invalid", inputs(t, `{"icc": false,}`, nil), ""},
		{"flag and file conflict", "daemon.config_invalid", inputs(t, withJSON(`"hosts": ["unix:///var/run/docker.sock"]`), nil, "-H", "fd://"), ""},
		{"not rootless /info", "daemon.not_rootless", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.SecurityOptions = i.SecurityOptions[:2] })), "GET /info"},
		{"cgroup parent json", "daemon.cgroup_parent", inputs(t, withJSON(`"cgroup-parent": "/docker-workloads"`), nil), "daemon.json"},
		{"cgroup parent flag", "daemon.cgroup_parent", inputs(t, hardenedJSON, nil, "--cgroup-parent", "/x"), "flag --cgroup-parent"},
		{"dm.basesize json", "daemon.dm_basesize", inputs(t, withJSON(`"storage-driver": "devicemapper", "storage-opts": ["dm.basesize=20G"]`), nil), "daemon.json"},
		{"dm.basesize flag /info", "daemon.dm_basesize", inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.Driver = "devicemapper" }),
			"--storage-opt", "dm.basesize=50G"), "flag --storage-opt"},
	}
}

// daemonHostCases are the rules judged from host facts beside the settings.
func daemonHostCases(t *testing.T) []daemonRuleCase {
	return []daemonRuleCase{
		{"data root shared", "daemon.data_root_shared", withHost(inputs(t, hardenedJSON, nil), func(h *hostFacts) { h.dataRootMount = false }), "mountinfo"},
		{"group members, no list", "daemon.docker_group_members", withHost(inputs(t, hardenedJSON, nil), func(h *hostFacts) {
			h.group.Listed, h.group.Primary = []string{"alice"}, []string{"bob"}
		}), ""},
		{"group member untrusted", "daemon.docker_group_untrusted", withHost(inputs(t, hardenedJSON, nil), func(h *hostFacts) {
			h.group.Listed, h.trusted = []string{"alice", "mallory"}, []string{"alice"}
		}), ""},
		{"version old", "daemon.version_old", withHost(inputs(t, hardenedJSON, withInfo(func(i *system.Info) { i.ServerVersion = "20.10.24+dfsg1" })),
			func(h *hostFacts) { h.minVersion = "24.0" }), ""},
		{"content trust off", "daemon.content_trust_off", withHost(inputs(t, hardenedJSON, nil), func(h *hostFacts) {
			h.contentTrust = setting[bool]{false, "/etc/environment"}
		}), "/etc/environment"},
	}
}

func checkDaemonRule(t *testing.T, c daemonRuleCase) {
	got := ruleSet(judgeDaemon(c.in))
	f, ok := got[c.rule]
	if !ok {
		t.Fatalf("rule %s not triggered; got %v", c.rule, keys(got))
	}
	if c.from != "" && !strings.Contains(f.Details["setting_source"], c.from) {
		t.Errorf("setting_source = %q, want it to mention %q", f.Details["setting_source"], c.from)
	}
	if f.Remediation == "" || f.Message == "" {
		t.Errorf("finding without message or remediation: %+v", f)
	}
	// Only the triggered rule (and rules the same change implies) fire.
	delete(got, c.rule)
	for r := range got {
		if c.rule == "daemon.config_invalid" {
			continue // an unusable daemon.json leaves defaults in force
		}
		if c.name == "tcp json" && r == "daemon.config_invalid" {
			continue
		}
		t.Errorf("unrelated rule %s fired: %s", r, got[r].Message)
	}
}

func keys(m map[string]findings.Finding) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTCPWithTLSVerifyIsNotAFinding(t *testing.T) {
	for name, in := range map[string]*daemonInputs{
		"json":  inputs(t, strings.Replace(hardenedJSON, "{", `{"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": true,`, 1), nil),
		"flags": inputs(t, hardenedJSON, nil, "-H", "tcp://0.0.0.0:2376", "--tlsverify", "--tlscacert=/ca.pem"),
	} {
		if f, ok := ruleSet(judgeDaemon(in))["daemon.tcp_without_tls"]; ok {
			t.Errorf("%s: tlsverify set but finding: %s", name, f.Message)
		}
	}
	env := inputs(t, hardenedJSON, nil, "-H", "tcp://0.0.0.0:2376")
	env.proc = &hostfs.Dockerd{PID: 42, Env: map[string]string{"DOCKER_TLS_VERIFY": "1"}}
	if _, ok := ruleSet(judgeDaemon(env))["daemon.tcp_without_tls"]; ok {
		t.Error("DOCKER_TLS_VERIFY in dockerd's environment not honoured")
	}
	listening := inputs(t, hardenedJSON, nil)
	listening.proc = &hostfs.Dockerd{PID: 42}
	listening.tcpListeners = []string{"0.0.0.0:2375"}
	f, ok := ruleSet(judgeDaemon(listening))["daemon.tcp_without_tls"]
	if !ok || f.Severity != findings.Critical || !strings.Contains(f.Details["endpoints"], "0.0.0.0:2375") {
		t.Errorf("a TCP socket held by dockerd without tlsverify: finding %v %+v", ok, f)
	}
}

func TestNoNewPrivilegesFromInfo(t *testing.T) {
	js := strings.Replace(hardenedJSON, `"no-new-privileges": true`, `"no-new-privileges": false`, 1)
	info := hardenedInfo()
	info.SecurityOptions = append(info.SecurityOptions, "name=no-new-privileges")
	if f, ok := ruleSet(judgeDaemon(inputs(t, js, info)))["daemon.no_new_privileges_default"]; ok {
		t.Errorf("/info reports no-new-privileges but finding: %s", f.Details["setting_source"])
	}
}

func TestBridgeICCOptionIsAuthoritative(t *testing.T) {
	off, on := false, true
	in := inputs(t, strings.Replace(hardenedJSON, `"icc": false,`, "", 1), nil) // settings say default (on)
	in.bridgeICC = &off
	if _, ok := ruleSet(judgeDaemon(in))["daemon.icc_enabled"]; ok {
		t.Error("bridge reports icc off but finding fired")
	}
	in = inputs(t, hardenedJSON, nil) // settings say off
	in.bridgeICC = &on
	if _, ok := ruleSet(judgeDaemon(in))["daemon.icc_enabled"]; !ok {
		t.Error("bridge reports icc on but no finding")
	}
}

func TestConfigInvalidNamesPosition(t *testing.T) {
	in := inputs(t, "{\n  \"icc\": false,\n}", nil)
	f, ok := ruleSet(judgeDaemon(in))["daemon.config_invalid"]
	if !ok {
		t.Fatal("no daemon.config_invalid")
	}
	if f.Severity != findings.High || f.Details["line"] != "3" || f.Details["column"] != "1" {
		t.Errorf("severity %s line %q column %q, want high 3 1", f.Severity, f.Details["line"], f.Details["column"])
	}
	if !strings.Contains(f.Remediation, "line 3, column 1") {
		t.Errorf("remediation %q does not name the position", f.Remediation)
	}
}

func TestParseDockerdFlags(t *testing.T) {
	f := parseDockerdFlags([]string{"-H", "fd://", "--containerd=/run/containerd/containerd.sock", "-D", "--tlsverify",
		"--host", "tcp://0.0.0.0:2376", "-Hunix:///x.sock", "--icc=false", "-l", "warn", "--default-ulimit", "nofile=1:2"})
	if got := strings.Join(f["host"], " "); got != "fd:// tcp://0.0.0.0:2376 unix:///x.sock" {
		t.Errorf("host = %q", got)
	}
	if v, _ := f.boolean("debug"); !v {
		t.Error("-D not parsed as debug")
	}
	if v, _ := f.boolean("tlsverify"); !v {
		t.Error("--tlsverify not parsed")
	}
	if v, ok := f.boolean("icc"); !ok || v {
		t.Error("--icc=false not parsed")
	}
	if v, _ := f.last("log-level"); v != "warn" {
		t.Errorf("log-level = %q", v)
	}
	if v, _ := f.last("containerd"); v != "/run/containerd/containerd.sock" {
		t.Errorf("containerd = %q", v)
	}
	keys := f.configKeys()
	if keys["hosts"] != "--host" || keys["default-ulimits"] != "--default-ulimit" {
		t.Errorf("configKeys = %v", keys)
	}
}

// Every daemon rule, reached from a daemon.json that gets everything wrong
// and from one dockerd cannot parse, emits the kind its catalogue entry has.
func TestDaemonFindingKindsMatchTheCatalogue(t *testing.T) {
	worst := `{"icc": true, "log-level": "debug", "iptables": false, "insecure-registries": ["reg.local:5000"],
	  "storage-driver": "aufs", "hosts": ["tcp://0.0.0.0:2375"], "log-driver": "json-file", "userland-proxy": true,
	  "seccomp-profile": "/etc/docker/seccomp.json", "experimental": true}`
	var all []findings.Finding
	oldDM := &system.Info{Driver: "devicemapper", ServerVersion: "19.03.1"}
	badHost := func(trusted []string) func(*hostFacts) {
		return func(h *hostFacts) {
			*h = hostFacts{dataRoot: "/var/lib/docker", group: hostfs.GroupMembers{Name: "docker", Listed: []string{"eve"}},
				trusted: trusted, minVersion: "24.0"}
		}
	}
	for _, in := range []*daemonInputs{inputs(t, worst, nil), inputs(t, `{"icc": false,}`, nil),
		withHost(inputs(t, `{"cgroup-parent": "/x", "storage-opts": ["dm.basesize=20G"]}`, oldDM), badHost(nil)),
		withHost(inputs(t, "", oldDM), badHost([]string{"alice"}))} {
		all = append(all, judgeDaemon(in)...)
	}
	reached := ruleSet(all)
	for _, r := range findings.Rules() {
		if r.Kind == findings.KindDaemon && r.Source == Name {
			if _, ok := reached[r.ID]; !ok {
				t.Errorf("rule %s not reached; got %v", r.ID, keys(reached))
			}
		}
	}
	if err := findings.CheckKinds(all); err != nil {
		t.Error(err)
	}
}

// The daemon rule table has one entry per daemon rule of the catalogue,
// and each entry reports only its own rule.
func TestDaemonRuleTableMatchesTheCatalogue(t *testing.T) {
	entries := map[string]bool{}
	for _, r := range daemonRules {
		if entries[r.id] {
			t.Errorf("rule %s has two entries", r.id)
		}
		entries[r.id] = true
		for _, in := range []*daemonInputs{inputs(t, "", nil), inputs(t, `{"icc": false,}`, nil)} {
			for _, f := range r.judge(in) {
				if f.Rule != r.id {
					t.Errorf("the entry of %s reported %s", r.id, f.Rule)
				}
			}
		}
	}
	for _, r := range findings.Rules() {
		if r.Kind == findings.KindDaemon && r.Source == Name && !entries[r.ID] { // the swarm rules are the containers source's
			t.Errorf("catalogued daemon rule %s has no entry in the table", r.ID)
		}
	}
	if len(entries) != 24 {
		t.Errorf("%d entries, want the 24 daemon rules", len(entries))
	}
}
