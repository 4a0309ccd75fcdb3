package containers

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// plantedSecret is an env value that must never leave the process.
const plantedSecret = "dw-planted-Secr3t-value-7d1e"

// dockerCreate creates a labelled test container with the CLI (the test,
// not the agent, writes) and removes it at cleanup.
func dockerCreate(t testing.TB, args ...string) string {
	t.Helper()
	full := append([]string{"create", "--label", "dockward.test=1"}, args...)
	full = append(full, busyboxID(t), "sleep", "600")
	id := strings.TrimSpace(testenv.Run(t, "docker", full...))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	return id
}

// busyboxID is the test image's ID: containers created from it are
// pinned to one image (no container.image_not_pinned).
func busyboxID(t testing.TB) string {
	t.Helper()
	img := testenv.RequireBusyboxImage(t)
	return strings.TrimSpace(testenv.Run(t, "docker", "image", "inspect", "-f", "{{.Id}}", img))
}

// eventLog records the events the source handled, per container and action.
type eventLog struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *eventLog) record(ev events.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	a, _, _ := strings.Cut(string(ev.Action), ":")
	l.n[ev.Actor.ID+" "+a]++
}

func (l *eventLog) count(id, action string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[id+" "+action]
}

func startBehindProxy(t *testing.T) (*harness, *readOnlyProxy, *eventLog) {
	t.Helper()
	return startBehindProxyWith(t, fastConfig())
}

func startBehindProxyWith(t *testing.T, cfg Config) (*harness, *readOnlyProxy, *eventLog) {
	t.Helper()
	testenv.RequireDocker(t)
	testenv.RequireBusyboxImage(t)
	p := newReadOnlyProxy(t, testenv.DockerSocket())
	h := newHarness(t, NewEngine(p.client()), cfg, nil)
	el := &eventLog{}
	h.src.handled = el.record
	h.run(t)
	if testutil.ToFloat64(h.src.m.up) != 1 {
		t.Fatalf("not connected to the engine through the proxy")
	}
	t.Cleanup(func() { p.check(t) })
	return h, p, el
}

type ruleCase struct {
	name    string
	image   string // the reference to create from; empty: the test image's ID
	args    []string
	present map[string]string // rule -> severity
	absent  []string
	exact   bool // present is the whole set
}

// engineRuleCases are containers to create, one per rule and ones that
// must not trigger it; tmp is a harmless host directory to mount, tagged a
// tag of the test image (created from its ID unless a case says so).
func engineRuleCases(tmp, tagged string) []ruleCase {
	hardened := []string{"--network", "none", "--read-only", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "100",
		"--user", "1000:1000", "--security-opt", "no-new-privileges=true", "--health-cmd", "true", "--cap-drop", "ALL"}
	with := func(extra ...string) []string { return append(append([]string{}, hardened...), extra...) }
	return []ruleCase{
		{name: "hardened", args: hardened, present: map[string]string{}, exact: true},
		{name: "plain", args: []string{"--network", "none"}, present: map[string]string{
			"container.no_memory_limit": "medium", "container.no_cpu_limit": "low", "container.no_pids_limit": "medium",
			"container.runs_as_root": "medium", "container.writable_rootfs": "low", "container.no_healthcheck": "info",
			"container.no_new_privileges": "low"}, exact: true},
		{name: "privileged-never-started", args: with("--privileged"), present: map[string]string{"container.privileged": "critical"}, exact: true},
		{name: "root-ro", args: with("-v", "/:/host:ro"), present: map[string]string{
			"container.sensitive_mount": "medium", "container.docker_socket_mount": "critical"}, exact: true},
		{name: "etc-rw", args: with("-v", "/etc:/hostetc"), present: map[string]string{"container.sensitive_mount": "high"}, exact: true},
		{name: "var-run", args: with("-v", "/var/run:/x"), present: map[string]string{"container.docker_socket_mount": "critical"},
			absent: []string{"container.sensitive_mount"}, exact: true},
		{name: "docker-sock", args: with("-v", "/var/run/docker.sock:/var/run/docker.sock:ro"),
			present: map[string]string{"container.docker_socket_mount": "critical"}, exact: true},
		{name: "harmless-at-usr", args: with("-v", tmp+":/usr"), present: map[string]string{}, exact: true},
		{name: "cpu-quota-only", args: []string{"--network", "none", "--cpu-quota", "50000"},
			present: map[string]string{"container.no_memory_limit": "medium"}, absent: []string{"container.no_cpu_limit"}},
		{name: "cpu-shares-only", args: []string{"--network", "none", "--cpu-shares", "512"},
			present: map[string]string{"container.no_cpu_limit": "low"}},
		{name: "nnp-false", args: []string{"--network", "none", "--read-only", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "100",
			"--user", "1000:1000", "--health-cmd", "true", "--cap-drop", "ALL", "--security-opt", "no-new-privileges=false"},
			present: map[string]string{"container.no_new_privileges": "low"}, exact: true},
		{name: "user-root", args: with("--user", "0:0"), present: map[string]string{"container.runs_as_root": "medium"}, exact: true},
		{name: "cap-all-minus-sys-admin", args: with("--cap-add", "ALL", "--cap-drop", "SYS_ADMIN"), present: map[string]string{
			"container.dangerous_capability": "high", "container.added_capability": "low"}, exact: true},
		{name: "cap-default", args: with("--cap-add", "NET_BIND_SERVICE"), present: map[string]string{}, exact: true},
		{name: "host-namespaces", args: with("--pid", "host", "--ipc", "host", "--uts", "host", "--userns", "host"), present: map[string]string{
			"container.host_pid": "high", "container.host_ipc": "high", "container.host_uts": "medium", "container.host_userns": "high"}, exact: true},
		{name: "host-network", args: append(with()[2:], "--network", "host"), present: map[string]string{"container.host_network": "high"}, exact: true},
		{name: "seccomp", args: with("--security-opt", "seccomp=unconfined"), present: map[string]string{"container.seccomp_unconfined": "high"}, exact: true},
		// This host has no AppArmor: an unconfined profile is not a finding.
		{name: "apparmor-no-host-support", args: with("--security-opt", "apparmor=unconfined"), present: map[string]string{}, exact: true},
		{name: "device", args: with("--device", "/dev/null:/dev/xnull"), present: map[string]string{"container.host_devices": "medium"}, exact: true},
		{name: "propagation", args: with("-v", tmp+":/data:rshared"), present: map[string]string{"container.shared_propagation": "medium"}, exact: true},
		{name: "ports", args: append(with()[2:], "--network", "bridge", "-p", "80:80", "-p", "127.0.0.1:8080:8080"), present: map[string]string{
			"container.privileged_port": "low", "container.port_all_interfaces": "info", "container.default_bridge": "info",
			"container.published_ports": "info"}, exact: true},
		{name: "ports-local-high", args: append(with()[2:], "--network", "bridge", "-p", "127.0.0.1:8080:8080"), present: map[string]string{
			"container.default_bridge": "info", "container.published_ports": "info"}, exact: true},
		// The allow list covers 8080 for this name: only the bridge is left.
		{name: "ports-allowed", args: append(with()[2:], "--network", "bridge", "-p", "127.0.0.1:8080:8080"), present: map[string]string{
			"container.default_bridge": "info"}, exact: true},
		{name: "default-bridge", args: append(with()[2:], "--network", "bridge"), present: map[string]string{"container.default_bridge": "info"}, exact: true},
		{name: "ulimits", args: with("--ulimit", "nofile=1024:2048"), present: map[string]string{"container.ulimits_override": "info"}, exact: true},
		// This host's dockerd has no SELinux support: a disabled label is not a finding.
		{name: "selinux-no-host-support", args: with("--security-opt", "label=disable"), present: map[string]string{}, exact: true},
		{name: "image-latest", image: testenv.BusyboxImage, args: hardened, present: map[string]string{"container.image_not_pinned": "info"}, exact: true},
		{name: "image-tag", image: tagged, args: hardened, present: map[string]string{"container.image_not_pinned": "info"}, exact: true},
		{name: "restart", args: with("--restart", "on-failure:10"), present: map[string]string{"container.restart_retries": "info"}, exact: true},
		{name: "restart-ok", args: with("--restart", "on-failure:3"), present: map[string]string{}, exact: true},
		{name: "cgroup-parent", args: with("--cgroup-parent", "/dwtest"), present: map[string]string{"container.cgroup_parent": "low"}, exact: true},
		{name: "secret", args: with("-e", "DB_PASSWORD="+plantedSecret, "-e", "HARMLESS=1"), present: map[string]string{"container.secret_in_env": "high"}, exact: true},
		{name: "secret-file", args: with("-e", "DB_PASSWORD_FILE=/run/secrets/db"), present: map[string]string{}, exact: true},
	}
}

// createCases creates (never starts) one container per case, removed when
// the test ends, and returns their IDs in case order.
func createCases(t *testing.T, cases []ruleCase) []string {
	t.Helper()
	imageID := busyboxID(t)
	ids := make([]string, len(cases))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var createErr []string
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			full := append([]string{"create", "--label", "dockward.test=1", "--name", fmt.Sprintf("dwtest-%s-%d", c.name, os.Getpid())}, c.args...)
			full = append(full, orDefault(c.image, imageID), "sleep", "600")
			out, err := exec.Command("docker", full...).CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				createErr = append(createErr, fmt.Sprintf("%s: %v: %s", c.name, err, out))
				return
			}
			ids[i] = strings.TrimSpace(string(out))
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, id := range ids {
			if id != "" {
				exec.Command("docker", "rm", "-f", id).Run()
			}
		}
	})
	if len(createErr) > 0 {
		t.Fatalf("creating test containers: %s", strings.Join(createErr, "\n"))
	}
	return ids
}

// mismatch says how container id's open findings differ from the case
// ("" when they match).
func (c ruleCase) mismatch(h *harness, id string) string {
	got := h.rules(id)
	if _, known := h.src.NameOf(id); !known {
		return "not judged yet"
	}
	for r, sev := range c.present {
		if got[r] != sev {
			return fmt.Sprintf("%s: got %q, want %q (all: %v)", r, got[r], sev, got)
		}
	}
	for _, r := range c.absent {
		if _, ok := got[r]; ok {
			return fmt.Sprintf("%s present but must not be (all: %v)", r, got)
		}
	}
	if c.exact && len(got) != len(c.present) {
		return fmt.Sprintf("findings %v, want exactly %v", got, c.present)
	}
	return ""
}

// TestEngineRulesBehindReadOnlyProxy creates one container per rule (and
// ones that must not trigger it) while the agent runs behind a proxy that
// refuses any non-read request, and checks each judgement from the event
// stream: judged at create, never started.
func TestEngineRulesBehindReadOnlyProxy(t *testing.T) {
	cfg := fastConfig()
	cfg.AllowedPorts = []PortAllowance{{Container: "dwtest-ports-allowed-*", Ports: []string{"8080/tcp"}}}
	h, p, _ := startBehindProxyWith(t, cfg)
	tagged := "dockward-test-busybox:cis-" + strconv.Itoa(os.Getpid())
	testenv.Run(t, "docker", "tag", testenv.BusyboxImage, tagged)
	t.Cleanup(func() { exec.Command("docker", "rmi", tagged).Run() })
	cases := engineRuleCases(t.TempDir(), tagged)
	ids := createCases(t, cases)
	idOf := func(name string) string {
		for i, c := range cases {
			if c.name == name {
				return ids[i]
			}
		}
		t.Fatalf("no case %q", name)
		return ""
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var msg string
			if !testenv.Eventually(10*time.Second, func() bool { msg = c.mismatch(h, ids[i]); return msg == "" }) {
				t.Fatal(msg)
			}
		})
	}
	if n := h.src.stateCounts()["created"]; n < len(cases) {
		t.Errorf("dockward_containers{state=created} = %d, want at least %d", n, len(cases))
	}

	// docker update resolves the memory finding (this engine also wants the
	// swap limit updated with it).
	plain := idOf("plain")
	testenv.Run(t, "docker", "update", "--memory", "64m", "--memory-swap", "128m", plain)
	testenv.WaitFor(t, 10*time.Second, "memory finding resolved by docker update", func() bool {
		_, open := h.rules(plain)["container.no_memory_limit"]
		return !open
	})
	checkSecretNowhere(t, h, idOf("secret"))
	checkRemovedEverywhere(t, h, idOf("root-ro"))
	p.check(t)
}

// checkSecretNowhere checks the secret case's finding names the variable
// and its value is nowhere: logs, metrics, the findings API JSON.
func checkSecretNowhere(t *testing.T, h *harness, secretID string) {
	t.Helper()
	f := h.rules(secretID)
	if _, ok := f["container.secret_in_env"]; !ok {
		t.Fatalf("secret case not judged")
	}
	api, err := json.Marshal(h.store.Open())
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"logs": h.logs.String(), "metrics": h.metricsText(t), "findings JSON": string(api)} {
		if strings.Contains(text, plantedSecret) {
			t.Errorf("the planted secret value leaked into %s", where)
		}
	}
	if !strings.Contains(string(api), `"variables":"DB_PASSWORD"`) {
		t.Errorf("the finding does not name the variable: %s", api)
	}
}

// checkRemovedEverywhere removes the container (docker rm) and checks that
// every series and finding of it goes.
func checkRemovedEverywhere(t *testing.T, h *harness, victim string) {
	t.Helper()
	testenv.Run(t, "docker", "rm", "-f", victim)
	testenv.WaitFor(t, 10*time.Second, "findings removed on destroy", func() bool { return h.findingCount(victim) == 0 })
	if strings.Contains(h.metricsText(t), victim[:12]) {
		t.Errorf("/metrics still has a series of the removed container")
	}
	if _, ok := h.src.NameOf(victim); ok {
		t.Errorf("removed container still known")
	}
}

// TestEngineExecEvents runs docker exec (one privileged) in a running
// container and checks the counter and the log line, through the proxy.
func TestEngineExecEvents(t *testing.T) {
	h, _, el := startBehindProxy(t)
	img := testenv.RequireBusyboxImage(t)
	id := strings.TrimSpace(testenv.Run(t, "docker", "run", "-d", "--label", "dockward.test=1", "--network", "none", img, "sleep", "600"))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	testenv.WaitFor(t, 10*time.Second, "running container judged", func() bool { return h.src.stateCounts()["running"] > 0 && h.findingCount(id) > 0 })
	if o := h.src.Observations(); o["5.23"].Status != findings.StatusPass || o["5.24"].Status != findings.StatusPass {
		t.Errorf("before any exec: 5.23 %+v, 5.24 %+v; want pass", o["5.23"], o["5.24"])
	}
	// Deltas: other tests on this engine may exec at the same time; the
	// log lines below are matched to this container exactly.
	count := func(privileged, root string) float64 {
		return testutil.ToFloat64(h.src.m.execs.WithLabelValues(privileged, root))
	}
	beforeUser, beforeRoot, beforePriv := count("false", "false"), count("false", "true"), count("true", "true")
	testenv.Run(t, "docker", "exec", "-t", "-u", "1000", id, "echo", "hello")
	testenv.Run(t, "docker", "exec", id, "true") // as the container's user: root
	// A privileged exec is reported even though this sandbox cannot start it.
	exec.Command("docker", "exec", "--privileged", id, "id").Run()
	testenv.WaitFor(t, 10*time.Second, "exec_start events", func() bool { return el.count(id, "exec_start") == 3 })
	for what, got := range map[string]float64{"as user 1000": count("false", "false") - beforeUser,
		"as root": count("false", "true") - beforeRoot, "privileged as root": count("true", "true") - beforePriv} {
		if got < 1 {
			t.Errorf("execs %s counted %v, want at least this test's 1", what, got)
		}
	}
	if o := h.src.Observations(); o["5.23"].Status != findings.StatusInfo || o["5.24"].Status != findings.StatusInfo {
		t.Errorf("after privileged and root execs: 5.23 %+v, 5.24 %+v; want info", o["5.23"], o["5.24"])
	}
	var users []string
	for _, l := range h.logs.lines(t) {
		if l["msg"] != "docker exec started" {
			continue
		}
		ctr, _ := l["container"].(map[string]any)
		if ctr["id"] != id[:12] {
			continue
		}
		users = append(users, fmt.Sprintf("%v/%v/%v/root=%v/tty=%v", l["user"], l["command"], l["privileged"], l["root"], l["tty"]))
	}
	want := []string{"1000/echo hello/false/root=false/tty=true", "(container default)/true/false/root=true/tty=false",
		"(container default)/id/true/root=true/tty=false"}
	if strings.Join(users, " ") != strings.Join(want, " ") {
		t.Errorf("exec log lines = %v, want %v", users, want)
	}
}

// TestEngineFaultReconnect cuts the proxy, changes containers while the
// agent cannot see, restores it, and checks every finding is right, none
// duplicated, and the reconnect counted.
func TestEngineFaultReconnect(t *testing.T) {
	h, p, el := startBehindProxy(t)
	hardened := []string{"--network", "none", "--read-only", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "100",
		"--user", "1000:1000", "--security-opt", "no-new-privileges=true", "--health-cmd", "true", "--cap-drop", "ALL"}
	a := dockerCreate(t, append(hardened, "--privileged")...)
	testenv.WaitFor(t, 10*time.Second, "a judged", func() bool { return h.rules(a)["container.privileged"] != "" })

	p.cut()
	testenv.WaitFor(t, 10*time.Second, "docker_up 0", func() bool { return testutil.ToFloat64(h.src.m.up) == 0 })
	b := dockerCreate(t, append(hardened, "--privileged")...)
	c := dockerCreate(t, append(hardened, "--privileged")...)
	testenv.Run(t, "docker", "rm", "-f", c)
	testenv.Run(t, "docker", "rm", "-f", a)
	time.Sleep(300 * time.Millisecond) // several retries at the capped backoff
	if h.findingCount(a) == 0 {
		t.Fatalf("the agent saw a change while cut off: the proxy did not cut it")
	}
	p.restore()
	testenv.WaitFor(t, 15*time.Second, "docker_up 1 again", func() bool { return testutil.ToFloat64(h.src.m.up) == 1 })
	if got := testutil.ToFloat64(h.src.m.reconnects); got != 1 {
		t.Errorf("dockward_docker_reconnects_total = %v, want 1", got)
	}
	testenv.WaitFor(t, 10*time.Second, "replayed destroy of c", func() bool { return el.count(c, "destroy") == 1 })
	if got := h.rules(b); len(got) != 1 || got["container.privileged"] != "critical" {
		t.Errorf("b, created during the outage: %v, want only container.privileged", got)
	}
	for name, id := range map[string]string{"a": a, "c": c} {
		if n := h.findingCount(id); n != 0 {
			t.Errorf("%s was removed during the outage but has %d findings", name, n)
		}
		if _, ok := h.src.NameOf(id); ok {
			t.Errorf("%s was removed during the outage but is still known", name)
		}
	}
	for _, id := range []string{a, b, c} {
		if n := el.count(id, "create"); n != 1 {
			t.Errorf("create of %s handled %d times, want exactly once across the reconnect", id[:12], n)
		}
	}
	if n := el.count(a, "destroy"); n != 1 {
		t.Errorf("destroy of a handled %d times", n)
	}
	if n := h.logs.count("docker unreachable"); n != 1 {
		t.Errorf("outage logged %d times, want once", n)
	}
	seen := map[string]bool{}
	for _, f := range h.store.Open() {
		k := f.Rule + "/" + string(f.Subject.Kind) + "/" + f.Subject.ContainerID + f.Subject.ImageID + "/" + f.Subject.Name
		if seen[k] {
			t.Errorf("duplicate finding %s", k)
		}
		seen[k] = true
	}
}
