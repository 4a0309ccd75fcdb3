// Package deploy holds the tests that tie the deploy artifacts to the
// README, which carries the install guides and the alert routing.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockward/dockward/deploy/internal/readme"
)

const readmePath = "../README.md"

func readReadme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	return string(data)
}

// The README carries an install guide per placement, each with the commands
// that install and start dockward from this repository's files, and a
// section on alert routing.
func TestReadmeInstallGuides(t *testing.T) {
	doc := readReadme(t)
	install := readme.Section(doc, "## Install")
	if install == "" {
		t.Fatal(`README.md has no "## Install" section`)
	}
	guides := map[string][]string{
		"### systemd": {
			"install -m 0644 deploy/systemd/dockward.service /etc/systemd/system/dockward.service",
			"install -m 0644 deploy/systemd/dockward.default /etc/default/dockward",
			"systemctl enable --now dockward",
		},
		"### Docker": {
			"docker run", "--pid host", "--network host",
			"/var/run/docker.sock:/var/run/docker.sock:ro",
			"--cap-add AUDIT_CONTROL", "--cap-add AUDIT_READ",
		},
		"### Kubernetes (helm)": {
			"helm install dockward deploy/helm/dockward",
			"prometheus.monitor.enabled=true", "prometheusRules.enabled=true",
		},
		"### Swarm": {
			"make image",
			"docker stack deploy -c deploy/swarm/dockward-stack.yml dockward",
		},
		"### Prometheus": {
			"install -m 0644 deploy/prometheus/alerts.yml",
			"promtool check config",
		},
	}
	for heading, commands := range guides {
		text := readme.Section(install, heading)
		if text == "" {
			t.Errorf("README.md's Install section has no %q guide", heading)
			continue
		}
		sh := readme.ShellBlocks(text)
		for _, c := range commands {
			if !strings.Contains(sh, c) {
				t.Errorf("README.md %q: no sh block runs %q", heading, c)
			}
		}
	}
	routing := readme.Section(doc, "## Alert routing")
	if routing == "" {
		t.Fatal(`README.md has no "## Alert routing" section`)
	}
	for _, want := range []string{"deploy/prometheus/alertmanager.yml", "amtool check-config", "inhibit_rules:", "receiver:"} {
		if !strings.Contains(routing, want) {
			t.Errorf("README.md's Alert routing section lacks %q", want)
		}
	}
}

// Every repository file the README names, and every relative link and
// in-page anchor it uses, exists: the guides cannot point at a moved file.
func TestReadmeReferencesExist(t *testing.T) {
	doc := readReadme(t)
	paths := regexp.MustCompile("(?:^|[\\s`(\\[])((?:deploy|docs)/[A-Za-z0-9_./-]*[A-Za-z0-9_])").FindAllStringSubmatch(doc, -1)
	if len(paths) < 10 {
		t.Fatalf("found only %d repository paths in README.md; the scan is broken", len(paths))
	}
	for _, m := range paths {
		p := m[1]
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("README.md names %s, which does not exist", p)
		}
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(doc, -1) {
		a := strings.ToLower(m[1])
		a = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(a, "")
		anchors[strings.ReplaceAll(a, " ", "-")] = true
	}
	for _, m := range regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(doc, -1) {
		link := m[1]
		switch {
		case strings.HasPrefix(link, "http://"), strings.HasPrefix(link, "https://"):
		case strings.HasPrefix(link, "#"):
			if !anchors[link[1:]] {
				t.Errorf("README.md links to %s, which no heading defines", link)
			}
		default:
			if _, err := os.Stat(filepath.Join("..", strings.SplitN(link, "#", 2)[0])); err != nil {
				t.Errorf("README.md links to %s, which does not exist", link)
			}
		}
	}
}
