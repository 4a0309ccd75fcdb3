package containers

import (
	"strings"
	"testing"

	"github.com/docker/go-units"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
)

// hardenedInspect is a container no rule reports, referenced by digest.
func hardenedInspect() container.InspectResponse {
	pids := int64(100)
	return container.InspectResponse{ID: "c0ffee0123456789c0ffee0123456789", Name: "/app",
		Config: &container.Config{Image: "registry.example/app@sha256:" + strings.Repeat("ab", 32), User: "1000",
			Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}}},
		HostConfig: &container.HostConfig{NetworkMode: "none", ReadonlyRootfs: true, SecurityOpt: []string{"no-new-privileges"},
			Resources: container.Resources{Memory: 1 << 26, NanoCPUs: 5e8, PidsLimit: &pids}}}
}

func judgedRules(c container.InspectResponse, host HostFacts, allowed ...PortAllowance) map[string]findings.Finding {
	out := map[string]findings.Finding{}
	for _, f := range Judge(c, host, allowed...) {
		out[f.Rule] = f
	}
	return out
}

func TestHardenedInspectHasNoFindings(t *testing.T) {
	if got := judgedRules(hardenedInspect(), HostFacts{SELinux: true, AppArmor: true}); len(got) != 0 {
		t.Fatalf("hardened container: %v", got)
	}
}

// CIS 5.3, mirroring AppArmor's 5.2: only on a host whose dockerd runs
// with SELinux (GET /info SecurityOptions name=selinux), never elsewhere.
func TestSELinuxDisabledOnlyOnSELinuxHosts(t *testing.T) {
	facts := func(opts ...string) HostFacts {
		return hostFactsFrom(dockerinfo.Parse(&system.Info{SecurityOptions: opts}))
	}
	selinux := facts("name=seccomp,profile=default", "name=selinux")
	if !selinux.SELinux || facts("name=apparmor").SELinux {
		t.Fatalf("SecurityOptions parsing: %+v", selinux)
	}
	for opt, want := range map[string]bool{
		"label=disable": true, "label:disable": true, "label=type:spc_t": true, "label:type:spc_t": true,
		"label=type:container_t": false, "label=level:s0:c100,c200": false, "seccomp=unconfined": false,
	} {
		c := hardenedInspect()
		c.HostConfig.SecurityOpt = append(c.HostConfig.SecurityOpt, opt)
		f, got := judgedRules(c, selinux)["container.selinux_disabled"]
		if got != want {
			t.Errorf("%s on an SELinux host: finding %v, want %v", opt, got, want)
		}
		if got && f.Details["security_opt"] != opt {
			t.Errorf("%s: details %v", opt, f.Details)
		}
		if _, on := judgedRules(c, HostFacts{})["container.selinux_disabled"]; on {
			t.Errorf("%s on a host without SELinux: reported", opt)
		}
	}
}

func TestRuntimeReviewRules(t *testing.T) {
	c := hardenedInspect()
	c.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}
	f, ok := judgedRules(c, HostFacts{})["container.ulimits_override"]
	if !ok || f.Details["ulimits"] != (&units.Ulimit{Name: "nofile", Soft: 1024, Hard: 2048}).String() {
		t.Errorf("ulimits: %v %v", ok, f.Details)
	}
	for mode, want := range map[container.NetworkMode]bool{"default": true, "bridge": true, "none": false, "host": false, "backend": false} {
		c := hardenedInspect()
		c.HostConfig.NetworkMode = mode
		if _, got := judgedRules(c, HostFacts{})["container.default_bridge"]; got != want {
			t.Errorf("network mode %s: default_bridge %v, want %v", mode, got, want)
		}
	}
	c = hardenedInspect()
	c.HostConfig.NetworkMode = "backend"
	c.NetworkSettings = &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"backend": {}, "bridge": {}}}
	if _, got := judgedRules(c, HostFacts{})["container.default_bridge"]; !got {
		t.Error("a container connected to the bridge after create is not reported")
	}
}

func TestImageReferencePinning(t *testing.T) {
	for ref, want := range map[string]string{
		"nginx":                        "by latest",
		"nginx:latest":                 "by latest",
		"registry.example:5000/a/b:v2": "by tag v2 only",
		"nginx:1.25@sha256:" + strings.Repeat("0", 64): "",
		"sha256:" + strings.Repeat("f", 64):            "",
		"0123456789ab":                                 "",
		"Not A Reference":                              "unparsable",
	} {
		c := hardenedInspect()
		c.Config.Image = ref
		f, got := judgedRules(c, HostFacts{})["container.image_not_pinned"]
		if got != (want != "") || got && !strings.Contains(f.Message, want) {
			t.Errorf("%q: finding %v %q, want one saying %q", ref, got, f.Message, want)
		}
	}
}

func TestPublishedPortsAndAllowList(t *testing.T) {
	c := hardenedInspect()
	c.Name = "/web-1"
	c.HostConfig.PortBindings = network.PortMap{
		network.MustParsePort("80/tcp"):   {{HostPort: "8080"}},
		network.MustParsePort("9090/tcp"): {{HostPort: "9090"}},
		network.MustParsePort("53/udp"):   {{HostPort: "5353"}},
		network.MustParsePort("22/tcp"):   nil, // exposed in the map, bound nowhere
	}
	ports := func(allowed ...PortAllowance) string {
		return judgedRules(c, HostFacts{}, allowed...)["container.published_ports"].Details["ports"]
	}
	if got := ports(); got != "53/udp,80/tcp,9090/tcp" {
		t.Errorf("no allow list: %q", got)
	}
	cases := []struct {
		a    PortAllowance
		want string
	}{
		{PortAllowance{Container: "web-*", Ports: []string{"80", "53/udp"}}, "9090/tcp"},
		{PortAllowance{Image: "registry.example/app*", Ports: []string{"9000-9100/tcp", "80/tcp", "53/udp"}}, ""},
		{PortAllowance{Container: "web-*", Image: "other/*", Ports: []string{"80"}}, "53/udp,80/tcp,9090/tcp"},
		{PortAllowance{Container: "db-*", Ports: []string{"80"}}, "53/udp,80/tcp,9090/tcp"},
		{PortAllowance{Container: "web-1", Ports: []string{"53"}}, "53/udp,80/tcp,9090/tcp"}, // 53 is tcp
	}
	for _, tc := range cases {
		if got := ports(tc.a); got != tc.want {
			t.Errorf("%+v: left %q, want %q", tc.a, got, tc.want)
		}
	}
	c.HostConfig.PortBindings = nil
	c.HostConfig.PublishAllPorts = true
	c.Config.ExposedPorts = network.PortSet{network.MustParsePort("8443/tcp"): {}}
	if got := ports(); got != "8443/tcp" {
		t.Errorf("-P with an exposed port: %q", got)
	}
}

func TestPortAllowanceValidation(t *testing.T) {
	bad := []PortAllowance{
		{Ports: []string{"80"}},
		{Container: "x", Ports: nil},
		{Container: "x", Ports: []string{"http"}},
		{Container: "x", Ports: []string{"0"}},
		{Container: "x", Ports: []string{"90-80"}},
		{Container: "x", Ports: []string{"70000"}},
		{Container: "[", Ports: []string{"80"}},
		{Image: "x", Ports: []string{"80/icmp"}},
	}
	for _, a := range bad {
		cfg := DefaultConfig()
		cfg.AllowedPorts = []PortAllowance{a}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "containers.allowed_ports[0]") {
			t.Errorf("%+v: error %v, want one naming containers.allowed_ports[0]", a, err)
		}
	}
	cfg := DefaultConfig()
	cfg.AllowedPorts = []PortAllowance{{Container: "web-*", Ports: []string{"80", "443/tcp", "8000-8010/udp"}}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a good allow list: %v", err)
	}
}

// History lines as this engine's classic builder records them (docker
// history --no-trunc of a FROM scratch build), and as BuildKit does.
var recordedHistory = []string{
	`/bin/sh -c #(nop)  CMD ["/bin/sh"]`,
	`/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "0s" "0s" "0s" '\x00'}`,
	`/bin/sh -c apt-get update && apt-get install -y curl`,
	`/bin/sh -c apt-get update`,
	`/bin/busybox --install -s /bin`,
	`/bin/sh -c #(nop) COPY file:fd547c3a83380b9b4800abd080df603e2685d4c8ce0eda786233cba463e2685b in /usr/bin/apt-get `,
	`/bin/sh -c #(nop) ADD file:9b685a7dfe628ea353bc12e4761f2108cb3cee88a6fc0d948c842ceb7269a9e3 in /etc/file.txt `,
}

func TestHistoryInstruction(t *testing.T) {
	cases := map[string][2]string{
		recordedHistory[0]: {"CMD", `["/bin/sh"]`},
		recordedHistory[2]: {"RUN", "apt-get update && apt-get install -y curl"},
		recordedHistory[4]: {"RUN", "/bin/busybox --install -s /bin"},
		recordedHistory[6]: {"ADD", "file:9b685a7dfe628ea353bc12e4761f2108cb3cee88a6fc0d948c842ceb7269a9e3 in /etc/file.txt"},
		"ADD https://example.com/a.tgz /opt/ # buildkit": {"ADD", "https://example.com/a.tgz /opt/"},
		"RUN /bin/sh -c apk update # buildkit":           {"RUN", "/bin/sh -c apk update"},
		"|1 VERSION=2 /bin/sh -c apt-get update":         {"RUN", "|1 VERSION=2 /bin/sh -c apt-get update"},
		"":                                               {"RUN", ""},
	}
	for in, want := range cases {
		if i, a := historyInstruction(in); i != want[0] || a != want[1] {
			t.Errorf("%q: %q %q, want %q %q", in, i, a, want[0], want[1])
		}
	}
}

func TestUpdatesAlone(t *testing.T) {
	for cmd, want := range map[string]bool{
		"apt-get update": true,
		"DEBIAN_FRONTEND=noninteractive apt-get -q update": true,
		"apk update":                                    true,
		"sudo apt update; echo done":                    true,
		"zypper --non-interactive refresh":              true,
		"apt-get update && apt-get install -y curl":     false,
		"apt-get update && apt-get -y dist-upgrade":     false,
		"apk update && apk add --no-cache tzdata":       false,
		"apk add --update curl":                         false,
		"yum update -y":                                 false, // installs updates itself
		"yum makecache && yum install -y httpd":         false,
		"dnf makecache":                                 true,
		"echo apt-get update":                           false,
		"/usr/bin/apt-get update":                       true,
		"(apt-get update || true) && apt-get install x": false,
	} {
		if got := updatesAlone(cmd); got != want {
			t.Errorf("%q: %v, want %v", cmd, got, want)
		}
	}
}

func TestJudgeImage(t *testing.T) {
	var hist []image.HistoryResponseItem
	for _, h := range recordedHistory {
		hist = append(hist, image.HistoryResponseItem{CreatedBy: h})
	}
	id := "sha256:" + strings.Repeat("a1", 32)
	img := image.InspectResponse{ID: id, RepoTags: []string{"tools:2", "tools:1"}, Config: &dockerspec.DockerOCIImageConfig{}}
	got := map[string]findings.Finding{}
	if err := findings.CheckKinds(JudgeImage(img, hist)); err != nil {
		t.Error(err)
	}
	for _, f := range JudgeImage(img, hist) {
		got[f.Rule] = f
		if f.Subject.Kind != findings.KindImage || f.Subject.Name != "tools:1" || f.Subject.ImageID != id || f.Subject.Image != "a1a1a1a1a1a1" {
			t.Errorf("%s: subject %+v", f.Rule, f.Subject)
		}
	}
	if len(got) != 3 || !strings.Contains(got["image.update_alone"].Details["instructions"], "apt-get update") ||
		strings.Contains(got["image.update_alone"].Details["instructions"], "install") ||
		!strings.Contains(got["image.add_instruction"].Message, "/etc/file.txt") || got["image.no_healthcheck"].Rule == "" {
		t.Errorf("findings: %v", got)
	}
	img.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "true"}}
	if fs := JudgeImage(img, nil); len(fs) != 0 {
		t.Errorf("an image with a health check and no history: %v", fs)
	}
	img.Config.Healthcheck.Test = []string{"NONE"}
	if fs := JudgeImage(img, nil); len(fs) != 1 || !strings.Contains(fs[0].Message, "HEALTHCHECK NONE") {
		t.Errorf("HEALTHCHECK NONE: %v", fs)
	}
	img.RepoTags = nil
	if fs := JudgeImage(img, nil); fs[0].Subject.Name != "sha256:a1a1a1a1a1a1" {
		t.Errorf("an untagged image is named %q", fs[0].Subject.Name)
	}
}

// FuzzImageHistory: whatever a history line or a port spec says, judging
// never panics, an image always keeps its subject, and a port spec that
// parses is a valid range.
func FuzzImageHistory(f *testing.F) {
	for _, h := range recordedHistory {
		f.Add(h, "80/tcp")
	}
	f.Add("|2 A=1 B=2 /bin/sh -c apk update # buildkit", "8000-8010/udp")
	f.Add("RUN ((((", "-1")
	f.Fuzz(func(t *testing.T, createdBy, port string) {
		img := image.InspectResponse{ID: "sha256:" + strings.Repeat("0", 64)}
		for _, fd := range JudgeImage(img, []image.HistoryResponseItem{{CreatedBy: createdBy}}) {
			if fd.Subject.ImageID != img.ID || len(fd.Message) > 2000 {
				t.Fatalf("finding %+v", fd)
			}
		}
		if p, err := parsePortSpec(port); err == nil && (p.from == 0 || p.to < p.from) {
			t.Fatalf("%q parsed to %+v", port, p)
		}
	})
}
