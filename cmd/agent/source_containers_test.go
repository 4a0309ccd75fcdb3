package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

const containersOnly = `containers:
  enabled: true
  reconnect_backoff: 50ms
  reconnect_backoff_max: 200ms
audit:
  enabled: false
host:
  enabled: false
`

// readOnlySocket serves a Unix socket in front of dockerd that forwards GET
// and HEAD only, and records (and refuses) anything else.
type readOnlySocket struct {
	mu         sync.Mutex
	violations []string
}

func serveReadOnlySocket(t *testing.T, path, target string) *readOnlySocket {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &readOnlySocket{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", target)
		}},
		FlushInterval: -1,
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			p.mu.Lock()
			p.violations = append(p.violations, r.Method+" "+r.URL.Path)
			p.mu.Unlock()
			http.Error(w, `{"message":"read-only proxy"}`, http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *readOnlySocket) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.violations) > 0 {
		t.Errorf("the agent made non-read Docker requests: %v", p.violations)
	}
}

// TestAgentContainersBehindReadOnlyProxy runs the built agent with only the
// containers source, against dockerd through a proxy that refuses writes,
// and checks a never-started privileged container reaches /metrics and the
// findings API.
func TestAgentContainersBehindReadOnlyProxy(t *testing.T) {
	img := testenv.RequireBusyboxImage(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	p := serveReadOnlySocket(t, sock, testenv.DockerSocket())
	cfg := writeFile(t, dir, "containers.yml", containersOnly)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg, "--"+flagDockerHost+"=unix://"+sock)
	base := "http://" + a.Addr
	testenv.WaitFor(t, 15*time.Second, "docker_up 1", func() bool {
		return strings.Contains(scrape(t, http.DefaultClient, base+"/metrics"), "dockward_docker_up 1")
	})
	out, err := exec.Command("docker", "create", "--label", "dockward.test=1", "--network", "none", "--privileged", img, "true").CombinedOutput()
	if err != nil {
		t.Fatalf("docker create: %v: %s", err, out)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	want := `rule="container.privileged"`
	testenv.WaitFor(t, 10*time.Second, "privileged finding in /metrics", func() bool {
		m := scrape(t, http.DefaultClient, base+"/metrics")
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "dockward_finding{") && strings.Contains(l, want) && strings.Contains(l, `container_id="`+id[:12]+`"`) {
				return true
			}
		}
		return false
	})
	if api := scrape(t, http.DefaultClient, base+pathFindingsAPI); !strings.Contains(api, id) {
		t.Errorf("/api/v1/findings does not list the container")
	}
	exec.Command("docker", "rm", "-f", id).Run()
	testenv.WaitFor(t, 10*time.Second, "series gone after docker rm", func() bool {
		return !strings.Contains(scrape(t, http.DefaultClient, base+"/metrics"), id[:12])
	})
	p.check(t)
}

// TestAgentServesDockerDownAndKeepsRetrying starts the agent while the
// Docker socket does not exist: it must be ready, serve dockward_docker_up 0,
// log the outage once, and connect when the socket appears.
func TestAgentServesDockerDownAndKeepsRetrying(t *testing.T) {
	testenv.RequireDocker(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	cfg := writeFile(t, dir, "containers.yml", containersOnly)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg, "--"+flagDockerHost+"=unix://"+sock)
	base := "http://" + a.Addr
	testenv.WaitFor(t, 15*time.Second, "ready while docker is down", func() bool {
		resp, err := http.Get(base + pathReady)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	m := scrape(t, http.DefaultClient, base+"/metrics")
	if !strings.Contains(m, "dockward_docker_up 0") || !strings.Contains(m, `dockward_containers{state="running"} 0`) {
		t.Fatalf("/metrics while docker is down lacks dockward_docker_up 0 or the state series:\n%s", grepLines(m, "dockward_docker", "dockward_containers"))
	}
	time.Sleep(time.Second) // several retries at the 200ms cap
	if n := strings.Count(a.Logs.String(), "docker unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, a.Logs.String())
	}
	if _, err := os.Stat(sock); err == nil {
		t.Fatal("precondition: the socket must not exist yet")
	}
	p := serveReadOnlySocket(t, sock, testenv.DockerSocket())
	testenv.WaitFor(t, 15*time.Second, "docker_up 1 once the socket exists", func() bool {
		m := scrape(t, http.DefaultClient, base+"/metrics")
		return strings.Contains(m, "dockward_docker_up 1") && strings.Contains(m, "dockward_docker_reconnects_total 1")
	})
	p.check(t)
}

// TestAgentHonoursDockerHost: with no --docker.host the agent uses
// $DOCKER_HOST, and the flag wins over it. Each case starts with the chosen
// address absent (docker_up 0, which the default socket would not give) and
// connects once a proxy appears there.
func TestAgentHonoursDockerHost(t *testing.T) {
	testenv.RequireDocker(t)
	for _, viaFlag := range []bool{false, true} {
		name := map[bool]string{false: "env", true: "flag over env"}[viaFlag]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "docker.sock")
			cfg := writeFile(t, dir, "containers.yml", containersOnly)
			env := []string{"DOCKER_HOST=unix://" + sock}
			args := []string{"--" + flagConfigFile + "=" + cfg}
			if viaFlag {
				// The environment names the real daemon; only the flag leads
				// to the missing socket.
				env = []string{"DOCKER_HOST=unix://" + testenv.DockerSocket()}
				args = append(args, "--"+flagDockerHost+"=unix://"+sock)
			}
			a := testenv.StartAgent(t, env, args...)
			base := "http://" + a.Addr
			// The outage line names the socket it could not reach; an agent
			// that used any other address would have connected instead.
			testenv.WaitFor(t, 15*time.Second, "the outage logged for the named socket", func() bool {
				out := a.Logs.String()
				return strings.Contains(out, "docker unreachable") && strings.Contains(out, sock)
			})
			if m := scrape(t, http.DefaultClient, base+"/metrics"); !strings.Contains(m, "dockward_docker_up 0") {
				t.Fatalf("connected although %s names a socket that does not exist:\n%s", name, grepLines(m, "dockward_docker"))
			}
			p := serveReadOnlySocket(t, sock, testenv.DockerSocket())
			testenv.WaitFor(t, 15*time.Second, "docker_up 1 through the named socket", func() bool {
				return strings.Contains(scrape(t, http.DefaultClient, base+"/metrics"), "dockward_docker_up 1")
			})
			p.check(t)
		})
	}
}
