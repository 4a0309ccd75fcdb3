// Package deploy holds the tests that tie the deploy artifacts to the
// README, which carries the install guides and the alert routing.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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

// section returns the text under the heading line `heading` up to the next
// heading of the same or a higher level, or "" when there is no such heading.
func section(doc, heading string) string {
	level := strings.Index(heading, " ")
	lines := strings.Split(doc, "\n")
	fence := false
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			fence = !fence
		}
		if fence {
			continue
		}
		if start < 0 {
			if l == heading {
				start = i + 1
			}
			continue
		}
		if n := strings.Index(l, " "); n > 0 && n <= level && strings.Trim(l[:n], "#") == "" {
			return strings.Join(lines[start:i], "\n")
		}
	}
	if start < 0 {
		return ""
	}
	return strings.Join(lines[start:], "\n")
}

// shellBlocks returns the contents of the ```sh code blocks in text.
func shellBlocks(text string) string {
	var b strings.Builder
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		b.WriteString(m[1])
	}
	return b.String()
}

// The README carries an install guide per placement, each with the commands
// that install and start dockward from this repository's files, and a
// section on alert routing.
func TestReadmeInstallGuides(t *testing.T) {
	doc := readReadme(t)
	install := section(doc, "## Install")
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
		text := section(install, heading)
		if text == "" {
			t.Errorf("README.md's Install section has no %q guide", heading)
			continue
		}
		sh := shellBlocks(text)
		for _, c := range commands {
			if !strings.Contains(sh, c) {
				t.Errorf("README.md %q: no sh block runs %q", heading, c)
			}
		}
	}
	routing := section(doc, "## Alert routing")
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
