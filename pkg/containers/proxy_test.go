package containers

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"
)

// readOnlyProxy sits on a Unix socket in front of dockerd. It forwards GET
// and HEAD only and records anything else as a violation (and refuses it),
// so a test proves the agent makes read calls only. The test can cut it
// (every connection, streams included, and the socket itself) and restore it.
type readOnlyProxy struct {
	t      testing.TB
	path   string
	target string

	mu         sync.Mutex
	srv        *http.Server
	violations []string
	requests   []string
}

func newReadOnlyProxy(t testing.TB, target string) *readOnlyProxy {
	dir, err := os.MkdirTemp("", "dwproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &readOnlyProxy{t: t, path: filepath.Join(dir, "docker.sock"), target: target}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *readOnlyProxy) handler() http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p.target)
		}},
		FlushInterval: -1, // the event stream must pass through unbuffered
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.Path)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			p.violations = append(p.violations, r.Method+" "+r.URL.String())
			p.mu.Unlock()
			http.Error(w, `{"message":"read-only proxy: `+r.Method+` refused"}`, http.StatusForbidden)
			return
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})
}

// cut closes the listener and every open connection and removes the
// socket, as if dockerd went away.
func (p *readOnlyProxy) cut() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	os.Remove(p.path)
}

func (p *readOnlyProxy) restore() {
	l, err := net.Listen("unix", p.path)
	if err != nil {
		p.t.Fatal(err)
	}
	srv := &http.Server{Handler: p.handler()}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go srv.Serve(l)
}

func (p *readOnlyProxy) client() *client.Client {
	c, err := client.New(client.WithHost("unix://" + p.path))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c
}

// check fails the test on any non-read request and returns what was called.
func (p *readOnlyProxy) check(t testing.TB) []string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.violations) > 0 {
		t.Errorf("the agent made non-read requests: %s", strings.Join(p.violations, "; "))
	}
	return append([]string(nil), p.requests...)
}

// TestReadOnlyProxyRefusesWrites proves the proxy itself would catch a write.
func TestReadOnlyProxyRefusesWrites(t *testing.T) {
	f := newFakeEngine(t)
	f.start()
	p := newReadOnlyProxy(t, f.path)
	c := p.client()
	if _, err := c.ContainerList(context.Background(), client.ContainerListOptions{All: true}); err != nil {
		t.Fatalf("a read through the proxy failed: %v", err)
	}
	if _, err := c.ContainerRemove(context.Background(), "x", client.ContainerRemoveOptions{}); err == nil {
		t.Fatalf("a DELETE passed the read-only proxy")
	}
	p.mu.Lock()
	n := len(p.violations)
	p.violations = nil
	p.mu.Unlock()
	if n != 1 {
		t.Fatalf("violations recorded = %d, want 1", n)
	}
}
