// Package swarm tests the Swarm stack file: Docker's own loader accepts it
// (schema-validated, so a misspelt key fails) and it runs dockward as a
// global service with read-only host mounts.
package swarm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dockward/dockward/internal/testenv"
)

type stack struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		CapAdd  []string `yaml:"cap_add"`
		CapDrop []string `yaml:"cap_drop"`
		Deploy  struct {
			Mode string `yaml:"mode"`
		} `yaml:"deploy"`
		Networks map[string]any `yaml:"networks"`
		Configs  []struct {
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		} `yaml:"configs"`
		Volumes []struct {
			Type     string `yaml:"type"`
			Source   string `yaml:"source"`
			Target   string `yaml:"target"`
			ReadOnly bool   `yaml:"read_only"`
		} `yaml:"volumes"`
	} `yaml:"services"`
	Networks map[string]struct {
		External bool   `yaml:"external"`
		Name     string `yaml:"name"`
	} `yaml:"networks"`
	Configs map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
}

func TestStackFileLoadsAsGlobalService(t *testing.T) {
	docker := testenv.RequireCommand(t, "docker")
	// `docker stack config` runs the same loader and schema validation as
	// `docker stack deploy`, without needing a swarm.
	out, err := exec.Command(docker, "stack", "config", "-c", "dockward-stack.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("docker stack config rejects the stack file: %v\n%s", err, out)
	}
	var s stack
	if err := yaml.Unmarshal(out, &s); err != nil {
		t.Fatalf("parsing the merged stack: %v\n%s", err, out)
	}
	svc, ok := s.Services["dockward"]
	if !ok {
		t.Fatalf("no dockward service in:\n%s", out)
	}
	hasConfig := false
	for _, arg := range svc.Command {
		hasConfig = hasConfig || arg == "--config.file=/etc/dockward/config.yml"
	}
	if !hasConfig {
		t.Errorf("command %v replaces the image's CMD but drops --config.file=/etc/dockward/config.yml", svc.Command)
	}
	mounted := ""
	for _, c := range svc.Configs {
		if c.Target == "/etc/dockward/config.yml" {
			mounted = s.Configs[c.Source].File
		}
	}
	if abs, _ := filepath.Abs("config.yml"); mounted != abs {
		t.Errorf("the Swarm config at /etc/dockward/config.yml comes from %q, want this directory's config.yml", mounted)
	}
	if svc.Deploy.Mode != "global" {
		t.Errorf("deploy.mode %q, want global (one agent per node)", svc.Deploy.Mode)
	}
	hostNet := false
	for name := range svc.Networks {
		if n := s.Networks[name]; n.External && n.Name == "host" {
			hostNet = true
		}
	}
	if !hostNet {
		t.Error("the service must use the host network: audit events only reach the host's network namespace")
	}
	caps := map[string]bool{}
	for _, c := range svc.CapAdd {
		caps[c] = true
	}
	if !caps["AUDIT_CONTROL"] || !caps["AUDIT_READ"] {
		t.Errorf("cap_add %v lacks AUDIT_CONTROL or AUDIT_READ", svc.CapAdd)
	}
	socket := false
	for _, v := range svc.Volumes {
		if v.Type != "bind" {
			continue
		}
		if !v.ReadOnly {
			t.Errorf("host mount %s is writable; host mounts must be read-only", v.Source)
		}
		if v.Source == "/var/run/docker.sock" && v.Target == "/var/run/docker.sock" {
			socket = true
		}
	}
	if !socket {
		t.Error("the Docker socket is not mounted at /var/run/docker.sock")
	}
	root := false
	for _, v := range svc.Volumes {
		if v.Type == "bind" && v.Source == "/" && v.Target == "/host" && v.ReadOnly {
			root = true
		}
	}
	if !root {
		t.Error("the host's / must be mounted read-only at /host, where the image's config looks")
	}
}

// The stack's config is accepted by the real agent (strict parser). The
// audit source is switched off for the run so the test leaves the kernel's
// audit settings alone; its section, multicast mode included, is still
// parsed and validated.
func TestStackConfigLoadsInAgent(t *testing.T) {
	data, err := os.ReadFile("config.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RootFS string         `yaml:"rootfs"`
		Audit  map[string]any `yaml:"audit"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("parsing config.yml: %v", err)
	}
	if cfg.Audit["mode"] != "multicast" || cfg.RootFS != "/host" {
		t.Fatalf("config.yml %+v: want audit.mode multicast (no host PID namespace in Swarm) and rootfs /host", cfg)
	}
	cfg.Audit["enabled"] = false
	// The agent checks that rootfs is a readable directory, and /host
	// exists only in the task: point it at one that exists here.
	cfg.RootFS = t.TempDir()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.AgentAcceptsConfig(t, string(out))
}

// TestMain removes the agent binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }
