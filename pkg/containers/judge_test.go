package containers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
)

func loadInspect(t testing.TB, file string) container.InspectResponse {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var c container.InspectResponse
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s does not decode with the current API types: %v", file, err)
	}
	return c
}

// ruleSeverities maps rule -> severity for compact comparison.
func ruleSeverities(fs []findings.Finding) map[string]string {
	out := map[string]string{}
	for _, f := range fs {
		out[f.Rule] = f.Severity.String()
	}
	return out
}

// unhardened are the findings of a container created with no options but
// a CPU limit (on a daemon without no-new-privileges and userns-remap).
var unhardened = map[string]string{
	"container.no_new_privileges": "low",
	"container.no_memory_limit":   "medium",
	"container.no_pids_limit":     "medium",
	"container.runs_as_root":      "medium",
	"container.writable_rootfs":   "low",
	"container.no_healthcheck":    "info",
	"container.image_not_pinned":  "info", // every recorded inspect names its image by a tag
}

// webFindings are api-current/web.json's findings on a host without AppArmor.
var webFindings = map[string]string{
	"container.docker_socket_mount":  "critical",
	"container.dangerous_capability": "high",
	"container.added_capability":     "low",
	"container.privileged_port":      "low",
	"container.port_all_interfaces":  "info",
	"container.secret_in_env":        "high",
	"container.image_not_pinned":     "info", // registry.example/web:1.4: a tag only
	"container.default_bridge":       "info",
	"container.published_ports":      "info", // no allow list
}

// withRules is base plus extra, less the rules in without.
func withRules(base, extra map[string]string, without ...string) map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{base, extra} {
		for r, sev := range m {
			out[r] = sev
		}
	}
	for _, r := range without {
		delete(out, r)
	}
	return out
}

var publishedPorts = map[string]string{"container.privileged_port": "low", "container.port_all_interfaces": "info",
	"container.default_bridge": "info", "container.published_ports": "info"}

// recordedCases are inspect JSON recorded from this machine's engine (API
// 1.41) and a current-API payload, with the findings each must give.
var recordedCases = []struct {
	file string
	host HostFacts
	want map[string]string
}{
	{"api-1.41/hardened.json", HostFacts{}, map[string]string{"container.image_not_pinned": "info"}},
	{"api-1.41/risky.json", HostFacts{}, withRules(unhardened, map[string]string{
		"container.docker_socket_mount":  "critical",
		"container.sensitive_mount":      "medium", // "/" read-only; /tmp/dwrec at /usr is not sensitive
		"container.host_pid":             "high",
		"container.host_ipc":             "high",
		"container.host_network":         "high",
		"container.host_uts":             "medium",
		"container.dangerous_capability": "high",
		"container.added_capability":     "low",
		"container.seccomp_unconfined":   "high",
		"container.no_cpu_limit":         "low",
		"container.host_devices":         "medium",
		"container.shared_propagation":   "medium",
		"container.restart_retries":      "info",
		"container.cgroup_parent":        "low",
		"container.secret_in_env":        "high",
	})},
	{"api-1.41/ports.json", HostFacts{}, withRules(unhardened, publishedPorts)},
	// Daemon defaults: no-new-privileges on and userns-remap on clear
	// those two rules.
	{"api-1.41/ports.json", HostFacts{NoNewPrivileges: true, UsernsRemap: true},
		withRules(unhardened, publishedPorts, "container.no_new_privileges", "container.runs_as_root")},
	{"api-1.41/privileged.json", HostFacts{}, withRules(unhardened, map[string]string{
		"container.privileged":   "critical",
		"container.no_cpu_limit": "low",
	})},
	{"api-current/web.json", HostFacts{AppArmor: true}, withRules(webFindings, map[string]string{"container.apparmor_unconfined": "medium"})},
	// The same payload on a host without AppArmor: never an AppArmor finding.
	{"api-current/web.json", HostFacts{}, webFindings},
}

// TestJudgeRecordedInspect judges the recorded inspect payloads.
func TestJudgeRecordedInspect(t *testing.T) {
	for _, tc := range recordedCases {
		t.Run(tc.file, func(t *testing.T) {
			c := loadInspect(t, tc.file)
			got := Judge(c, tc.host)
			if gs := ruleSeverities(got); !reflect.DeepEqual(gs, tc.want) {
				t.Errorf("findings differ\n got: %v\nwant: %v", gs, tc.want)
			}
			for _, f := range got {
				if f.Subject.ContainerID != c.ID || f.Subject.Name != strings.TrimPrefix(c.Name, "/") || f.Subject.Kind != findings.KindContainer {
					t.Errorf("%s: subject %+v does not identify container %s", f.Rule, f.Subject, c.ID)
				}
			}
		})
	}
}

func TestJudgeRecordedDetails(t *testing.T) {
	got := map[string]findings.Finding{}
	for _, f := range Judge(loadInspect(t, "api-1.41/risky.json"), HostFacts{}) {
		got[f.Rule] = f
	}
	if d := got["container.dangerous_capability"].Details["capabilities"]; strings.Contains(d, "SYS_ADMIN") || !strings.Contains(d, "SYS_MODULE") {
		t.Errorf("--cap-add ALL --cap-drop SYS_ADMIN: dangerous caps %q must include SYS_MODULE and not SYS_ADMIN", d)
	}
	if d := got["container.docker_socket_mount"].Details["mounts"]; d != "/:/host,/var/run:/x" {
		t.Errorf("socket mounts = %q, want both / and /var/run", d)
	}
	if d := got["container.sensitive_mount"].Details["mounts"]; d != "/:/host:ro" {
		t.Errorf("sensitive mounts = %q, want only / (the /usr destination is not a source)", d)
	}
	if d := got["container.secret_in_env"].Details["variables"]; d != "DB_PASSWORD" {
		t.Errorf("secret variables = %q, want DB_PASSWORD", d)
	}
	if d := got["container.shared_propagation"].Details["mounts"]; d != "/tmp/dwrec:/usr:shared" {
		t.Errorf("shared propagation mounts = %q", d)
	}
	web := map[string]findings.Finding{}
	for _, f := range Judge(loadInspect(t, "api-current/web.json"), HostFacts{}) {
		web[f.Rule] = f
	}
	if d := web["container.secret_in_env"].Details["variables"]; d != "AWS_KEY_ID" {
		t.Errorf("current API secret variables = %q, want AWS_KEY_ID only (a _FILE variable is the remedy)", d)
	}
	if d := web["container.added_capability"].Details["capabilities"]; d != "SYS_NICE" {
		t.Errorf("added caps = %q, want SYS_NICE (NET_BIND_SERVICE is a default)", d)
	}
	if d := web["container.port_all_interfaces"].Details["ports"]; !strings.Contains(d, "443/tcp") || strings.Contains(d, "9090") {
		t.Errorf("all-interfaces ports = %q, want the :: binding only", d)
	}
}

func TestEffectiveAddedCaps(t *testing.T) {
	cases := []struct {
		add, drop []string
		want      []string
	}{
		{nil, nil, nil},
		{[]string{"NET_BIND_SERVICE"}, nil, nil},
		{[]string{"cap_sys_admin"}, nil, []string{"SYS_ADMIN"}},
		{[]string{"SYS_ADMIN"}, []string{"ALL"}, []string{"SYS_ADMIN"}},
		{[]string{"SYS_ADMIN"}, []string{"SYS_ADMIN"}, []string{"SYS_ADMIN"}}, // dockerd: an add wins
		{[]string{"ALL"}, []string{"SYS_ADMIN", "CAP_NET_ADMIN"}, nil},        // checked below
	}
	for _, tc := range cases[:5] {
		if got := effectiveAddedCaps(tc.add, tc.drop); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("add %v drop %v = %v, want %v", tc.add, tc.drop, got, tc.want)
		}
	}
	all := effectiveAddedCaps(cases[5].add, cases[5].drop)
	have := setOf(all...)
	if have["SYS_ADMIN"] || have["NET_ADMIN"] || have["CHOWN"] || !have["SYS_MODULE"] || !have["BPF"] {
		t.Errorf("ALL minus SYS_ADMIN, NET_ADMIN = %v", all)
	}
	if !sort.StringsAreSorted(all) {
		t.Errorf("not sorted: %v", all)
	}
}

func TestSecurityOptions(t *testing.T) {
	judge := func(opts []string, host HostFacts) map[string]string {
		c := container.InspectResponse{ID: "x", HostConfig: &container.HostConfig{SecurityOpt: opts}}
		return ruleSeverities(Judge(c, host))
	}
	cases := []struct {
		opts          []string
		host          HostFacts
		seccomp, nnp  bool
		apparmorFound bool
	}{
		{nil, HostFacts{}, false, true, false},
		{[]string{"seccomp:unconfined"}, HostFacts{}, true, true, false},
		{[]string{"seccomp=unconfined"}, HostFacts{}, true, true, false},
		{[]string{"seccomp=/etc/profile.json"}, HostFacts{}, false, true, false},
		{[]string{"no-new-privileges"}, HostFacts{}, false, false, false},
		{[]string{"no-new-privileges:true"}, HostFacts{}, false, false, false},
		{[]string{"no-new-privileges=false"}, HostFacts{NoNewPrivileges: true}, false, true, false},
		{[]string{"no-new-privileges-please=true"}, HostFacts{}, false, true, false}, // not a substring match
		{nil, HostFacts{NoNewPrivileges: true}, false, false, false},
		{[]string{"apparmor=unconfined"}, HostFacts{AppArmor: true}, false, true, true},
		{[]string{"apparmor:unconfined"}, HostFacts{}, false, true, false},
	}
	for _, tc := range cases {
		got := judge(tc.opts, tc.host)
		if _, ok := got["container.seccomp_unconfined"]; ok != tc.seccomp {
			t.Errorf("%v: seccomp finding = %v, want %v", tc.opts, ok, tc.seccomp)
		}
		if _, ok := got["container.no_new_privileges"]; ok != tc.nnp {
			t.Errorf("%v host %+v: no_new_privileges finding = %v, want %v", tc.opts, tc.host, ok, tc.nnp)
		}
		if _, ok := got["container.apparmor_unconfined"]; ok != tc.apparmorFound {
			t.Errorf("%v host %+v: apparmor finding = %v, want %v", tc.opts, tc.host, ok, tc.apparmorFound)
		}
	}
}

func TestMountRules(t *testing.T) {
	cases := []struct {
		src    string
		rw     bool
		socket bool
		sev    string // sensitive_mount severity, "" for none
	}{
		{"/", false, true, "medium"},
		{"/", true, true, "high"},
		{"/var/run", true, true, ""},
		{"/run", true, true, ""},
		{"/run/containerd", false, true, ""},
		{"/var/run/docker.sock", true, true, ""},
		{"/var/run/docker.sock/", true, true, ""},
		{"/var/lib/docker/volumes/x", true, false, "high"},
		{"/etc/kubernetes", false, false, "medium"},
		{"/usr/share", false, false, "medium"},
		{"/usrlocal", true, false, ""}, // a prefix of the name is not a parent
		{"/srv/data", true, false, ""},
		{"/home/u/etc", true, false, ""},
		{"/var/runner", true, false, ""},
	}
	for _, tc := range cases {
		c := container.InspectResponse{ID: "x", Mounts: []container.MountPoint{{Type: "bind", Source: tc.src, Destination: "/etc", RW: tc.rw}}}
		got := ruleSeverities(Judge(c, HostFacts{}))
		if _, ok := got["container.docker_socket_mount"]; ok != tc.socket {
			t.Errorf("%s: socket finding = %v, want %v", tc.src, ok, tc.socket)
		}
		if got["container.sensitive_mount"] != tc.sev {
			t.Errorf("%s rw=%v: sensitive mount severity %q, want %q", tc.src, tc.rw, got["container.sensitive_mount"], tc.sev)
		}
	}
	// A volume is not a bind, whatever its storage path.
	c := container.InspectResponse{ID: "x", Mounts: []container.MountPoint{{Type: "volume", Source: "/var/lib/docker/volumes/v/_data", Destination: "/data", RW: true}}}
	if got := ruleSeverities(Judge(c, HostFacts{})); got["container.sensitive_mount"] != "" {
		t.Errorf("volume judged as a sensitive bind: %v", got)
	}
}

func TestRootUserAndLimits(t *testing.T) {
	for u, root := range map[string]bool{"": true, "0": true, "root": true, "0:0": true, "root:wheel": true,
		"1000": false, "app": false, "1000:0": false, "rooty": false, " 0 ": true} {
		if got := isRootUser(u); got != root {
			t.Errorf("isRootUser(%q) = %v, want %v", u, got, root)
		}
	}
	pids := func(n int64) *int64 { return &n }
	cases := []struct {
		hc          container.HostConfig
		mem, cpu, p bool
	}{
		{container.HostConfig{}, true, true, true},
		{container.HostConfig{Resources: container.Resources{CPUShares: 512}}, true, true, true},
		{container.HostConfig{Resources: container.Resources{CPUQuota: 50000, Memory: 1 << 26, PidsLimit: pids(-1)}}, false, false, true},
		{container.HostConfig{Resources: container.Resources{NanoCPUs: 1e9, PidsLimit: pids(0)}}, true, false, true},
		{container.HostConfig{Resources: container.Resources{PidsLimit: pids(100)}}, true, true, false},
	}
	for i, tc := range cases {
		hc := tc.hc
		got := ruleSeverities(Judge(container.InspectResponse{ID: "x", HostConfig: &hc}, HostFacts{}))
		for rule, want := range map[string]bool{"container.no_memory_limit": tc.mem, "container.no_cpu_limit": tc.cpu, "container.no_pids_limit": tc.p} {
			if _, ok := got[rule]; ok != want {
				t.Errorf("case %d: %s = %v, want %v", i, rule, ok, want)
			}
		}
	}
}

func TestSecretEnvNames(t *testing.T) {
	env := []string{
		"DB_PASSWORD=hunter2", "db_password=again", "MYSQL_ROOT_PASSWORD_FILE=/run/secrets/x", "GITHUB_TOKEN=",
		"KEY_ID=AKIAIOSFODNN7EXAMPLE", "CERT=-----BEGIN RSA PRIVATE KEY-----\nMII", "PATH=/bin", "NOEQUALS",
		"DB_PASSWORD=dup", "ID=AKIAIOSFODNN7EXAMPLEX",
	}
	want := []string{"CERT", "DB_PASSWORD", "KEY_ID", "db_password"}
	if got := secretEnvNames(env); !reflect.DeepEqual(got, want) {
		t.Errorf("secretEnvNames = %v, want %v", got, want)
	}
}

func TestEventLabelsBounded(t *testing.T) {
	cases := map[[2]string][2]string{
		{"container", "exec_start: sh -c 'echo hi'"}: {"container", "exec_start"},
		{"container", "exec_create: /bin/ls"}:        {"container", "exec_create"},
		{"container", "health_status: healthy"}:      {"container", "health_status"},
		{"container", "frobnicate"}:                  {"container", "other"},
		{"weird\ntype", "create"}:                    {"other", "create"},
		{"daemon", "reload"}:                         {"daemon", "reload"},
	}
	for in, want := range cases {
		if a, b := eventLabels(in[0], in[1]); a != want[0] || b != want[1] {
			t.Errorf("eventLabels(%q, %q) = %q, %q; want %v", in[0], in[1], a, b, want)
		}
	}
}

func securityOptions(opts ...string) *dockerinfo.Info {
	return dockerinfo.Parse(&system.Info{SecurityOptions: opts})
}

func TestHostFactsFrom(t *testing.T) {
	got := hostFactsFrom(securityOptions("name=apparmor", "name=seccomp,profile=default", "name=userns", "name=no-new-privileges"))
	if got != (HostFacts{AppArmor: true, UsernsRemap: true, NoNewPrivileges: true}) {
		t.Errorf("got %+v", got)
	}
	if got := hostFactsFrom(securityOptions("name=seccomp,profile=default", "name=cgroupns")); got != (HostFacts{}) {
		t.Errorf("got %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if err := (Config{Enabled: true}).Validate(); err != nil {
		t.Fatalf("a section with only enabled must take defaults: %v", err)
	}
	bad := DefaultConfig()
	bad.InventoryConcurrency = -1
	bad.ReconnectBackoffMax = bad.ReconnectBackoff / 2
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "inventory_concurrency") || !strings.Contains(err.Error(), "reconnect_backoff_max") {
		t.Fatalf("want errors naming both keys, got %v", err)
	}
}

// FuzzJudge feeds arbitrary inspect JSON to the judge: it must never
// panic, and no finding may carry an environment value.
func FuzzJudge(f *testing.F) {
	for _, file := range []string{"api-1.41/risky.json", "api-1.41/ports.json", "api-current/web.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c container.InspectResponse
		if json.Unmarshal(data, &c) != nil {
			return
		}
		if c.Config == nil {
			return
		}
		// Mark every non-empty env value; the judgement must be the same
		// kind of judgement and must not carry the marker anywhere.
		const marker = "DOCKWARD-PLANTED-"
		for i, kv := range c.Config.Env {
			if name, value, ok := strings.Cut(kv, "="); ok && value != "" {
				c.Config.Env[i] = name + "=" + marker + value
			}
		}
		judged := Judge(c, HostFacts{AppArmor: true, SELinux: true}, PortAllowance{Container: "*", Ports: []string{"80"}})
		if err := findings.CheckKinds(judged); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(judged)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), marker) {
			t.Fatalf("an environment value reached a finding: %s", out)
		}
	})
}

// Every container rule the recorded inspects reach emits the kind its
// catalogue entry has.
func TestContainerFindingKindsMatchTheCatalogue(t *testing.T) {
	reached := map[string]bool{}
	for _, tc := range recordedCases {
		got := Judge(loadInspect(t, tc.file), tc.host)
		if err := findings.CheckKinds(got); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
		for _, f := range got {
			reached[f.Rule] = true
		}
	}
	if len(reached) < 25 { // as many as they reached when this test was written
		t.Errorf("the recorded inspects reach only %d rules: %v", len(reached), reached)
	}
}
