package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/system"

	"github.com/dockward/dockward/internal/testenv"
)

// fakeEngine is a fake Docker Engine API server: GET /_ping, /info, the
// container list, inspect and top, the bridge network, an empty image and
// network list, and an event stream that
// sends the recorded events and then stays open and quiet. The info can be
// changed as a daemon reload would.
type fakeEngine struct {
	mu         sync.Mutex
	info       system.Info
	containers map[string]json.RawMessage // inspect payloads by ID
	bridge     json.RawMessage            // GET /networks/bridge, nil: 404
	events     []byte                     // sent to every event stream
	images     []map[string]any           // GET /images/json
	// infoRequests counts the GET /info requests served.
	infoRequests int
}

// startFakeEngine serves e on a loopback port until the test ends and
// returns the agent's --docker.host value for it.
func startFakeEngine(t *testing.T, e *fakeEngine) string {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return "tcp://" + strings.TrimPrefix(srv.URL, "http://")
}

func (e *fakeEngine) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Api-Version", "1.41")
	p := r.URL.Path
	if strings.HasPrefix(p, "/v1.") { // the negotiated version prefix
		p = p[strings.Index(p[1:], "/")+1:]
	}
	if p == "/events" { // the recorded events, then open and quiet until the client goes
		rw.WriteHeader(http.StatusOK)
		e.mu.Lock()
		_, _ = rw.Write(e.events)
		e.mu.Unlock()
		rw.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case p == "/_ping":
		_, _ = rw.Write([]byte("OK"))
	case p == "/info":
		e.infoRequests++
		_ = json.NewEncoder(rw).Encode(e.info)
	case p == "/containers/json":
		list := []map[string]string{}
		for id := range e.containers {
			list = append(list, map[string]string{"Id": id})
		}
		_ = json.NewEncoder(rw).Encode(list)
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/json"):
		e.found(rw, e.containers[strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/json")])
	case p == "/images/json":
		list := e.images
		if list == nil {
			list = []map[string]any{}
		}
		_ = json.NewEncoder(rw).Encode(list)
	case p == "/networks/bridge":
		e.found(rw, e.bridge)
	case p == "/images/json", p == "/networks": // no local images, no swarm networks
		_, _ = rw.Write([]byte("[]"))
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/top"):
		_, _ = rw.Write([]byte(`{"Titles":["UID","PID","PPID","C","STIME","TTY","TIME","CMD"],"Processes":[]}`))
	default:
		e.found(rw, nil)
	}
}

// found writes body, or Docker's 404 when there is none.
func (e *fakeEngine) found(rw http.ResponseWriter, body json.RawMessage) {
	if body == nil {
		rw.WriteHeader(http.StatusNotFound)
		_, _ = rw.Write([]byte(`{"message":"not found"}`))
		return
	}
	_, _ = rw.Write(body)
}

// recordedEngine is a fake engine serving what was recorded from this
// machine's Docker 20.10 (testdata/e2e: /info, the bridge network and an
// event; pkg/containers/testdata: the containers, plus one current-API
// payload).
func recordedEngine(t *testing.T) *fakeEngine {
	t.Helper()
	e := &fakeEngine{containers: map[string]json.RawMessage{}}
	if err := json.Unmarshal(testenv.ReadFile(t, "testdata/e2e/info.json"), &e.info); err != nil {
		t.Fatalf("testdata/e2e/info.json: %v", err)
	}
	e.bridge = testenv.ReadFile(t, "testdata/e2e/network-bridge.json")
	e.events = testenv.ReadFile(t, "testdata/e2e/events.jsonl")
	for _, f := range []string{"api-1.41/hardened.json", "api-1.41/ports.json", "api-1.41/privileged.json",
		"api-1.41/risky.json", "api-current/web.json"} {
		data := testenv.ReadFile(t, filepath.Join("..", "..", "pkg", "containers", "testdata", f))
		var c struct{ ID string }
		if err := json.Unmarshal(data, &c); err != nil || c.ID == "" {
			t.Fatalf("%s: no container ID (%v)", f, err)
		}
		e.containers[c.ID] = data
	}
	return e
}

// hostEntry is one thing in a fixture host tree.
type hostEntry struct {
	path     string // host path
	mode     os.FileMode
	uid, gid int
	data     string // file content, or the link target for a symlink
	kind     byte   // 'f' file, 'd' directory, 'l' symlink, 's' Unix socket
}

// Fixture binaries: the package database records the right checksum for
// all of them but dockerd, as if dockerd had been replaced.
var fixtureBinaries = map[string]string{
	"/usr/bin/dockerd":                 "fixture dockerd, not the packaged one\n",
	"/usr/bin/docker":                  "fixture docker CLI\n",
	"/usr/bin/containerd":              "fixture containerd\n",
	"/usr/bin/containerd-shim-runc-v2": "fixture containerd-shim-runc-v2\n",
	"/usr/bin/runc":                    "fixture runc\n",
}

// fixtureDockerd is the daemon the fixture host runs, as /proc shows it:
// found through its pid file, listening on TCP 2375 (socket inode 31337).
const fixtureDockerdPID = "4242"

// fixtureHost lists a Debian-like Docker host with mistakes for every
// host rule family: loose modes and a wrong owner on Docker's files, a
// daemon.json whose settings give daemon findings, a TCP listener without
// TLS, a replaced dockerd, and the /var/run -> /run absolute link.
func fixtureHost() []hostEntry {
	pid := "/proc/" + fixtureDockerdPID
	sums := ""
	for p, content := range fixtureBinaries {
		if p == "/usr/bin/dockerd" {
			content = "the packaged dockerd\n"
		}
		sum := md5.Sum([]byte(content))
		sums += hex.EncodeToString(sum[:]) + "  " + strings.TrimPrefix(p, "/") + "\n"
	}
	es := []hostEntry{
		{path: "/etc/passwd", mode: 0o644, data: "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"},
		{path: "/etc/group", mode: 0o644, data: "root:x:0:\ndocker:x:999:alice\nalice:x:1000:\n"},
		{path: "/etc/docker", mode: 0o755, kind: 'd'},
		{path: "/etc/docker/daemon.json", mode: 0o666, data: `{"log-level": "debug", "iptables": false, "icc": true,
 "insecure-registries": ["registry.fixture.test:5000"], "live-restore": false, "userland-proxy": true,
 "experimental": true, "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}` + "\n"},
		{path: "/etc/docker/certs.d/registry.fixture.test:5000/ca.crt", mode: 0o644, data: "-----BEGIN CERTIFICATE-----\n"},
		{path: "/etc/default/docker", mode: 0o644, uid: 1000, gid: 1000, data: "DOCKER_OPTS=\n"},
		{path: "/usr/lib/systemd/system/docker.service", mode: 0o664, data: "[Service]\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock\n"},
		{path: "/usr/lib/systemd/system/docker.socket", mode: 0o644, data: "[Socket]\nListenStream=/run/docker.sock\nSocketGroup=docker\n"},
		{path: "/lib", kind: 'l', data: "usr/lib"},
		{path: "/var/run", kind: 'l', data: "/run"},
		{path: "/run/docker.sock", mode: 0o666, gid: 999, kind: 's'},
		{path: "/run/docker.pid", mode: 0o644, data: fixtureDockerdPID + "\n"},
		{path: "/run/containerd/containerd.sock", mode: 0o660, kind: 's'},
		{path: "/var/lib/docker", mode: 0o710, kind: 'd'},
		{path: "/var/lib/dpkg/info/docker.io.md5sums", mode: 0o644, data: sums},
		{path: "/proc/net/unix", mode: 0o444, data: "Num       RefCount Protocol Flags    Type St Inode Path\n"},
		{path: pid + "/cmdline", mode: 0o444, data: "/usr/bin/dockerd\x00--containerd=/run/containerd/containerd.sock\x00"},
		{path: pid + "/environ", mode: 0o400, data: "PATH=/usr/bin:/bin\x00"},
		{path: pid + "/stat", mode: 0o444, data: fixtureDockerdPID + " (dockerd) S 1 4242 4242 0 -1 4194560\n"},
		{path: pid + "/exe", kind: 'l', data: "/usr/bin/dockerd"},
		{path: pid + "/fd/3", kind: 'l', data: "socket:[31337]"},
		{path: pid + "/net/tcp", mode: 0o444, data: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: 00000000:0947 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n"},
	}
	for p, content := range fixtureBinaries {
		es = append(es, hostEntry{path: p, mode: 0o755, data: content})
	}
	return es
}

// buildHost writes entries under root, as root so that owners are real.
func buildHost(t *testing.T, root string, entries []hostEntry) {
	t.Helper()
	for _, e := range entries {
		local := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.kind {
		case 'd':
			err = os.Mkdir(local, e.mode)
		case 'l':
			err = os.Symlink(e.data, local)
		case 's':
			err = syscall.Mknod(local, syscall.S_IFSOCK|uint32(e.mode), 0)
		default:
			err = os.WriteFile(local, []byte(e.data), e.mode)
		}
		if err == nil && e.kind != 'l' {
			// Neither the umask nor a previous entry decides the mode.
			if err = os.Chmod(local, e.mode); err == nil {
				err = os.Lchown(local, e.uid, e.gid)
			}
		}
		if err != nil {
			t.Fatalf("fixture host %s: %v", e.path, err)
		}
	}
}

// fixtureBaseline is a binary baseline state file recording another hash
// for runc than the fixture's: runc changed since dockward last ran.
func fixtureBaseline(t *testing.T, stateDir string) {
	t.Helper()
	state := fmt.Sprintf(`{"version": 1, "binaries": {"/usr/bin/runc": {"sha256": "%064x", "size": 13, "recorded": "2026-01-01T00:00:00Z"}}}`, 1)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "binaries.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
}
