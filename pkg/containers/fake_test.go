package containers

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
)

// fakeEngine is a fake Engine API server on a Unix socket: enough of
// API 1.41 for the source (ping, info, list, inspect, events, exec inspect),
// with events that can be replayed by since= and raw lines that cannot.
type fakeEngine struct {
	t    testing.TB
	path string

	mu          sync.Mutex
	containers  map[string]container.InspectResponse
	images      map[string]fakeImage
	top         map[string][][]string // container ID -> ps -ef rows
	swarm       swarm.Info            // GET /info's Swarm
	autolock    bool                  // GET /swarm's AutoLockManagers
	networks    []network.Summary
	execs       map[string]container.ExecInspectResponse
	security    []string
	buffered    []fakeLine
	subscribers map[chan []byte]bool
	requests    []string
	srv         *http.Server
	// override, set before start, answers a request itself when it
	// returns true.
	override func(w http.ResponseWriter, r *http.Request) bool
}

// fakeImage is what the fake answers for one image.
type fakeImage struct {
	inspect image.InspectResponse
	history []image.HistoryResponseItem
}

type fakeLine struct {
	nano int64
	line []byte
}

func newFakeEngine(t testing.TB) *fakeEngine {
	dir, err := os.MkdirTemp("", "dwfake")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeEngine{t: t, path: filepath.Join(dir, "docker.sock"),
		containers: map[string]container.InspectResponse{}, execs: map[string]container.ExecInspectResponse{},
		images:   map[string]fakeImage{},
		security: []string{"name=seccomp,profile=default"}, subscribers: map[chan []byte]bool{}}
	return f
}

// start listens on the socket path (again, after stop).
func (f *fakeEngine) start() {
	l, err := net.Listen("unix", f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(l)
	f.t.Cleanup(func() { srv.Close() })
}

func (f *fakeEngine) stop() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Close()
	os.Remove(f.path)
}

func (f *fakeEngine) client() *client.Client {
	c, err := client.New(client.WithHost("unix://" + f.path))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

func (f *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Api-Version", "1.41")
	if f.override != nil && f.override(w, r) {
		return
	}
	p := r.URL.Path
	if strings.HasPrefix(p, "/v1.") {
		p = p[strings.Index(p[1:], "/")+1:]
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, `{"message":"read-only fake"}`, http.StatusForbidden)
		return
	}
	switch {
	case p == "/_ping":
		w.Write([]byte("OK"))
	case p == "/info":
		f.mu.Lock()
		sec := f.security
		f.mu.Unlock()
		f.mu.Lock()
		sw := f.swarm
		f.mu.Unlock()
		writeJSON(w, map[string]any{"SecurityOptions": sec, "SystemTime": time.Now().Format(time.RFC3339Nano), "Swarm": sw})
	case p == "/containers/json":
		f.mu.Lock()
		var list []map[string]string
		for id := range f.containers {
			list = append(list, map[string]string{"Id": id})
		}
		f.mu.Unlock()
		writeJSON(w, list)
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/json"):
		serveByID(w, &f.mu, f.containers, strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/json"), "container")
	case strings.HasPrefix(p, "/exec/") && strings.HasSuffix(p, "/json"):
		serveByID(w, &f.mu, f.execs, strings.TrimSuffix(strings.TrimPrefix(p, "/exec/"), "/json"), "exec instance")
	case p == "/events":
		f.events(w, r)
	default:
		f.serveMore(w, r, p)
	}
}

// serveMore answers the image, process, swarm and network calls: images
// from f.images, the rest as on an engine outside a swarm.
func (f *fakeEngine) serveMore(w http.ResponseWriter, r *http.Request, p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case p == "/images/json":
		list := []map[string]any{}
		for id := range f.images {
			list = append(list, map[string]any{"Id": id, "Containers": -1})
		}
		writeJSON(w, list)
	case strings.HasPrefix(p, "/images/"):
		id, what, _ := strings.Cut(strings.TrimPrefix(p, "/images/"), "/")
		img, ok := f.images[id]
		switch {
		case ok && what == "json":
			writeJSON(w, img.inspect)
		case ok && what == "history":
			writeJSON(w, img.history)
		default:
			w.WriteHeader(http.StatusNotFound)
			writeJSON(w, map[string]string{"message": "No such image"})
		}
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/top"):
		rows := f.top[strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/top")]
		if rows == nil {
			rows = [][]string{}
		}
		writeJSON(w, map[string]any{"Titles": []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, "Processes": rows})
	case p == "/networks":
		nets := f.networks
		if nets == nil {
			nets = []network.Summary{}
		}
		writeJSON(w, nets)
	case p == "/swarm" && f.swarm.ControlAvailable:
		writeJSON(w, map[string]any{"ID": "fake", "Spec": map[string]any{"EncryptionConfig": map[string]bool{"AutoLockManagers": f.autolock}}})
	case p == "/swarm":
		w.WriteHeader(http.StatusServiceUnavailable)
		writeJSON(w, map[string]string{"message": "This node is not a swarm manager."})
	default:
		http.NotFound(w, r)
	}
}

// serveByID writes byID[id] (read under mu), or Docker's 404 naming what.
func serveByID[T any](w http.ResponseWriter, mu *sync.Mutex, byID map[string]T, id, what string) {
	mu.Lock()
	v, ok := byID[id]
	mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		writeJSON(w, map[string]string{"message": "No such " + what + ": " + id})
		return
	}
	writeJSON(w, v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func parseSince(v string) int64 {
	if v == "" {
		return 0
	}
	sec, nsec, _ := strings.Cut(v, ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	n, _ := strconv.ParseInt((nsec + "000000000")[:9], 10, 64)
	return s*1e9 + n
}

func (f *fakeEngine) events(w http.ResponseWriter, r *http.Request) {
	since := parseSince(r.URL.Query().Get("since"))
	ch := make(chan []byte, 1024)
	f.mu.Lock()
	var replay [][]byte
	if since > 0 {
		for _, l := range f.buffered {
			if l.nano >= since {
				replay = append(replay, l.line)
			}
		}
	}
	f.subscribers[ch] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subscribers, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	for _, l := range replay {
		w.Write(l)
	}
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case l := <-ch:
			if _, err := w.Write(l); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// emit records an event (replayable) and sends it to every stream.
func (f *fakeEngine) emit(typ events.Type, action, id string, attrs map[string]string) events.Message {
	now := time.Now()
	ev := events.Message{Type: typ, Action: events.Action(action), Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	line, _ := json.Marshal(ev)
	line = append(line, '\n')
	f.mu.Lock()
	f.buffered = append(f.buffered, fakeLine{nano: ev.TimeNano, line: line})
	f.mu.Unlock()
	f.broadcast(line)
	return ev
}

// emitRaw sends bytes to the current streams only, as a corrupted frame would.
func (f *fakeEngine) emitRaw(line string) { f.broadcast([]byte(line)) }

func (f *fakeEngine) broadcast(line []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subscribers {
		ch <- line
	}
}

func (f *fakeEngine) subscribed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subscribers) > 0
}

func (f *fakeEngine) put(c container.InspectResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[c.ID] = c
}

func (f *fakeEngine) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

// fakeContainer is a minimal created container.
func fakeContainer(id, name string) container.InspectResponse {
	return container.InspectResponse{ID: id, Name: "/" + name, State: &container.State{Status: "created"},
		Config: &container.Config{Image: "fake:1"}, HostConfig: &container.HostConfig{}}
}

func hexID(n int) string { return fmt.Sprintf("%012x%052x", n+0xabc000, n) }

// logBuffer collects JSON log lines.
type logBuffer struct{ testenv.LogBuffer }

// lines returns the decoded log lines, failing on any line that is not JSON.
func (b *logBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not valid JSON: %v\n%s", err, l)
		}
		out = append(out, m)
	}
	return out
}

func (b *logBuffer) count(msg string) int {
	return strings.Count(b.String(), `"msg":"`+msg)
}

// harness runs a Source against an engine with a fresh registry and store.
type harness struct {
	src   *Source
	store *findings.Store
	reg   *prometheus.Registry
	logs  *logBuffer
}

func newHarness(t testing.TB, eng Engine, cfg Config, onReload func(*dockerinfo.Info)) *harness {
	t.Helper()
	logs := &logBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.DebugLevel))
	h := &harness{store: findings.NewStore(log), reg: prometheus.NewRegistry(), logs: logs}
	h.reg.MustRegister(findings.NewCollector(h.store))
	src, err := New(cfg, Deps{Log: log.With(zap.String("source", Name)), Registerer: h.reg, Sink: h.store.SourceSink(Name),
		Engine: eng, OnDaemonReload: onReload})
	if err != nil {
		t.Fatal(err)
	}
	h.src = src
	return h
}

func (h *harness) run(t testing.TB) { testenv.RunSource(t, h.src) }

// rules returns rule -> severity for one container's open findings.
func (h *harness) rules(id string) map[string]string {
	out := map[string]string{}
	for _, f := range h.store.Open() {
		if f.Subject.ContainerID == id {
			out[f.Rule] = f.Severity.String()
		}
	}
	return out
}

func (h *harness) findingCount(id string) int { return len(h.rules(id)) }

// metricsText renders the registry as the /metrics text format.
func (h *harness) metricsText(t testing.TB) string {
	t.Helper()
	return renderMetrics(t, h.reg)
}

func fastConfig() Config {
	c := DefaultConfig()
	c.ReconnectBackoff = 20 * time.Millisecond
	c.ReconnectBackoffMax = 100 * time.Millisecond
	c.RequestTimeout = 5 * time.Second
	return c
}
