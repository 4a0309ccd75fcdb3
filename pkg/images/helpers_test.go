package images

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dockward/dockward/internal/osvtest"
	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

const (
	bookworm   = "Debian:12"
	vulnerable = "3.0.11-1~deb12u1"
	patched    = "3.0.13-1~deb12u1"
	critical   = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
)

var bookwormRelease = testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)")

// harness is one images source over the real Docker Engine, with its own
// cache and database directories, a real store and a registry.
type harness struct {
	t     *testing.T
	cfg   Config
	src   *Source
	store *findings.Store
	reg   *prometheus.Registry
	eng   *recordingEngine
}

// recordingEngine remembers which image IDs were exported, so a test can
// tell its own images' exports from those of images other packages' tests
// create on the shared engine meanwhile.
type recordingEngine struct {
	*client.Client
	mu    sync.Mutex
	saved map[string]int
}

func (e *recordingEngine) ImageSave(ctx context.Context, ids []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	e.mu.Lock()
	for _, id := range ids {
		e.saved[id]++
	}
	e.mu.Unlock()
	return e.Client.ImageSave(ctx, ids, opts...)
}

// exportsOf counts the exports of the given image IDs.
func (h *harness) exportsOf(ids ...string) int {
	h.eng.mu.Lock()
	defer h.eng.mu.Unlock()
	n := 0
	for _, id := range ids {
		n += h.eng.saved[id]
	}
	return n
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	testenv.RequireDocker(t)
	cfg := DefaultConfig()
	dir := t.TempDir()
	cfg.CacheDir = filepath.Join(dir, "images")
	cfg.Vulns.DB.Dir = filepath.Join(dir, "vulns")
	cfg.Vulns.DB.Offline = true
	if mutate != nil {
		mutate(&cfg)
	}
	return buildHarness(t, cfg)
}

// buildHarness builds a source over cfg as it is (a second agent start over
// the same directories).
func buildHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	c, err := client.New(client.WithHost("unix://" + testenv.DockerSocket()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &harness{t: t, cfg: cfg, store: findings.NewStore(nil), reg: prometheus.NewRegistry(),
		eng: &recordingEngine{Client: c, saved: map[string]int{}}}
	h.src, err = New(cfg, Deps{Registerer: h.reg, Sink: h.store.SourceSink(Name), Engine: h.eng})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func (h *harness) scan() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := h.src.Scan(ctx); err != nil {
		h.t.Fatalf("Scan: %v", err)
	}
}

// debianZip writes the Debian database of the tests.
func (h *harness) debianZip(records ...osvtest.Record) string {
	return osvtest.WriteZip(h.t, h.cfg.Vulns.DB.Dir, "Debian", records...)
}

// finding returns the open finding of rule about subject.
func (h *harness) finding(rule, subject string) (findings.Finding, bool) {
	for _, f := range h.store.Open() {
		if f.Rule == rule && f.Subject.Name == subject {
			return f, true
		}
	}
	return findings.Finding{}, false
}

func (h *harness) mustFinding(rule, subject string) findings.Finding {
	h.t.Helper()
	f, ok := h.finding(rule, subject)
	if !ok {
		h.t.Fatalf("no %s finding about %s; open: %s", rule, subject, h.openList())
	}
	return f
}

func (h *harness) openList() string {
	var out []string
	for _, f := range h.store.Open() {
		out = append(out, f.Rule+"@"+f.Subject.Name+": "+f.Message)
	}
	return strings.Join(out, "\n  ")
}

// series returns the values of one metric family, keyed by its labels
// (name=value,... sorted), keeping only series whose labels include match.
func (h *harness) series(name string, match map[string]string) map[string]float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if key, ok := labelKey(m, match); ok {
				out[key] = value(m)
			}
		}
	}
	return out
}

func labelKey(m *dto.Metric, match map[string]string) (string, bool) {
	var parts []string
	seen := 0
	for _, l := range m.GetLabel() {
		if want, ok := match[l.GetName()]; ok {
			if want != l.GetValue() {
				return "", false
			}
			seen++
			continue
		}
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ","), seen == len(match)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

// counts is the non-zero severity/fixable counts of an image or container.
func (h *harness) counts(metric string, match map[string]string) string {
	h.t.Helper()
	var out []string
	for k, v := range h.series(metric, match) {
		if v != 0 {
			out = append(out, fmt.Sprintf("%s:%g", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (h *harness) exports() float64 {
	return h.series("dockward_images_exports_total", nil)[""]
}
