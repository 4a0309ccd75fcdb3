package watcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// tree is a temporary host root filesystem.
type tree struct {
	t    testing.TB
	root string
}

func newTree(t testing.TB) *tree {
	t.Helper()
	tr := &tree{t: t, root: t.TempDir()}
	tr.write("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
	tr.write("/etc/group", 0o644, "root:x:0:\ndocker:x:999:\nnogroup:x:65534:\n")
	tr.mkdir("/etc/docker", 0o755)
	return tr
}

// minimalHost adds the usual Docker files with compliant modes.
func (tr *tree) minimalHost() *tree {
	tr.write("/etc/docker/daemon.json", 0o644, `{"icc": false}`)
	tr.write("/lib/systemd/system/docker.service", 0o644, "[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n")
	tr.write("/lib/systemd/system/docker.socket", 0o644, "[Socket]\nListenStream=/run/docker.sock\n")
	tr.write("/run/docker.sock", 0o660, "")
	tr.chown("/run/docker.sock", 0, 999)
	tr.symlink("/var/run", "../run") // relative, so writes through it stay in the tree
	tr.write("/etc/default/docker", 0o644, "DOCKER_OPTS=\n")
	return tr
}

func (tr *tree) local(p string) string { return filepath.Join(tr.root, p) }

func (tr *tree) mkdir(p string, mode os.FileMode) {
	tr.t.Helper()
	if err := os.MkdirAll(tr.local(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(tr.local(p), mode); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) write(p string, mode os.FileMode, content string) {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Dir(tr.local(p)), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	tr.mustStayInside(p)
	if err := os.WriteFile(tr.local(p), []byte(content), 0o600); err != nil {
		tr.t.Fatal(err)
	}
	tr.chmod(p, mode)
}

func (tr *tree) chmod(p string, mode os.FileMode) {
	tr.t.Helper()
	tr.mustStayInside(p)
	if err := os.Chmod(tr.local(p), mode); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) chown(p string, uid, gid int) {
	tr.t.Helper()
	if os.Geteuid() != 0 {
		return // only root can give files away; owner tests are gated on root
	}
	if err := os.Lchown(tr.local(p), uid, gid); err != nil {
		tr.t.Fatal(err)
	}
}

// mustStayInside fails the test before it writes through an absolute
// symlink to this machine's real files.
func (tr *tree) mustStayInside(p string) {
	tr.t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Dir(tr.local(p)))
	if err != nil {
		tr.t.Fatal(err)
	}
	root, _ := filepath.EvalSymlinks(tr.root)
	if dir != root && !strings.HasPrefix(dir, root+"/") {
		tr.t.Fatalf("test bug: %s resolves outside the tree (%s)", p, dir)
	}
}

// symlink makes host path p point at target (an absolute target is a host path).
func (tr *tree) symlink(p, target string) {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Dir(tr.local(p)), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	_ = os.Remove(tr.local(p))
	if err := os.Symlink(target, tr.local(p)); err != nil {
		tr.t.Fatal(err)
	}
}

// fakeDocker answers GET /info and the bridge network inspect.
type fakeDocker struct {
	info      system.Info
	infoErr   error
	bridgeICC string // "" = no option
}

func (f *fakeDocker) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	if f.infoErr != nil {
		return client.SystemInfoResult{}, f.infoErr
	}
	return client.SystemInfoResult{Info: f.info}, nil
}

func (f *fakeDocker) NetworkInspect(_ context.Context, id string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	if f.bridgeICC == "" {
		return client.NetworkInspectResult{}, errors.New("network bridge not found")
	}
	var res client.NetworkInspectResult
	res.Network.Options = map[string]string{bridgeICCOption: f.bridgeICC}
	return res, nil
}

// harness runs the source against a tree.
type harness struct {
	t     testing.TB
	tree  *tree
	store *findings.Store
	reg   *prometheus.Registry
	src   *Source
	cfg   Config
	logs  *observer.ObservedLogs
}

func newHarness(t testing.TB, tr *tree, docker DockerAPI, mutate ...func(*Config)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	for _, m := range mutate {
		m(&cfg)
	}
	core, logs := observer.New(zap.DebugLevel)
	h := &harness{t: t, tree: tr, store: findings.NewStore(nil), reg: prometheus.NewRegistry(), cfg: cfg, logs: logs}
	src, err := New(cfg, Deps{Log: zap.New(core), Registerer: h.reg, Sink: h.store.SourceSink(Name), Docker: docker, Host: hostfs.At(tr.root)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.src = src
	return h
}

func (h *harness) scan() []findings.Finding {
	h.t.Helper()
	if err := h.src.Scan(context.Background()); err != nil {
		h.t.Fatalf("Scan: %v", err)
	}
	open := h.store.Open()
	if err := findings.CheckKinds(open); err != nil {
		h.t.Error(err)
	}
	return open
}

// find returns the open finding for rule and subject, if any.
func find(fs []findings.Finding, rule, subject string) (findings.Finding, bool) {
	for _, f := range fs {
		if f.Rule == rule && f.Subject.Name == subject {
			return f, true
		}
	}
	return findings.Finding{}, false
}

func rulesOf(fs []findings.Finding, subject string) []string {
	var out []string
	for _, f := range fs {
		if f.Subject.Name == subject {
			out = append(out, f.Rule)
		}
	}
	sort.Strings(out)
	return out
}

func (h *harness) errorCount(reason string) float64 {
	return testutil.ToFloat64(h.src.s.m.errors.WithLabelValues(reason))
}

func (h *harness) changeCount(path string) float64 {
	return testutil.ToFloat64(h.src.s.m.changes.WithLabelValues(path))
}

// eventuallyOpen reports whether rule's finding on subject opens within d.
func (h *harness) eventuallyOpen(d time.Duration, rule, subject string) bool {
	return testenv.Eventually(d, func() bool {
		_, ok := find(h.store.Open(), rule, subject)
		return ok
	})
}

// eventuallyResolved reports whether rule's finding on subject is gone
// within d.
func (h *harness) eventuallyResolved(d time.Duration, rule, subject string) bool {
	return testenv.Eventually(d, func() bool {
		_, ok := find(h.store.Open(), rule, subject)
		return !ok
	})
}
