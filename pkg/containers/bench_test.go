package containers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dockward/dockward/internal/testenv"
)

// benchLabel marks the containers the benchmarks create, so a run that was
// killed half-way is cleaned up by the next one.
const benchLabel = "dockward.bench"

const fleetSize = 1000

var (
	fleetOnce sync.Once
	fleetIDs  []string
	fleetErr  error
)

func TestMain(m *testing.M) {
	code := testenv.MainRun(m)
	if len(fleetIDs) > 0 {
		if err := removeContainers(context.Background(), fleetIDs); err != nil {
			fmt.Fprintln(os.Stderr, "removing benchmark containers:", err)
		}
	}
	removeScanSet()
	os.Exit(code)
}

func benchClient(b *testing.B) *client.Client {
	b.Helper()
	testenv.RequireDocker(b)
	c, err := client.New(client.WithHost("unix://" + testenv.DockerSocket()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// createContainers creates n busybox containers through the API, in
// parallel. Each is created, never started.
func createContainers(ctx context.Context, c *client.Client, n int, hc *container.HostConfig) ([]string, error) {
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
					Config: &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"true"},
						Labels: map[string]string{"dockward.test": "1", benchLabel: "1"}},
					HostConfig: hc,
				})
				ids[i], errs[i] = res.ID, err
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return ids, err
		}
	}
	return ids, nil
}

func removeContainers(ctx context.Context, ids []string) error {
	c, err := client.New(client.WithHost("unix://" + testenv.DockerSocket()))
	if err != nil {
		return err
	}
	defer c.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				if _, err := c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		if id != "" {
			next <- id
		}
	}
	close(next)
	wg.Wait()
	return firstErr
}

// fleet creates the 1,000 benchmark containers once per test process.
func fleet(b *testing.B) []string {
	b.Helper()
	testenv.RequireBusyboxImage(b)
	fleetOnce.Do(func() {
		c, err := client.New(client.WithHost("unix://" + testenv.DockerSocket()))
		if err != nil {
			fleetErr = err
			return
		}
		defer c.Close()
		ctx := context.Background()
		// Leftovers of an interrupted run.
		old, _ := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", benchLabel)})
		var stale []string
		for _, it := range old.Items {
			stale = append(stale, it.ID)
		}
		removeContainers(ctx, stale)
		start := time.Now()
		fleetIDs, fleetErr = createContainers(ctx, c, fleetSize, &container.HostConfig{NetworkMode: "none", Privileged: true})
		fmt.Fprintf(os.Stderr, "created %d benchmark containers in %s\n", fleetSize, time.Since(start).Round(time.Millisecond))
	})
	if fleetErr != nil {
		b.Fatalf("creating %d benchmark containers: %v", fleetSize, fleetErr)
	}
	return fleetIDs
}

// procStatus reads a field (in kB) of this process's /proc status.
func procStatus(field string) float64 { return procStatusOf(os.Getpid(), field) }

// BenchmarkDetectionLatency: from ContainerCreate returning to the finding
// being in a /metrics scrape of promhttp over the registry and the findings
// collector, over 200 creates of privileged containers.
func BenchmarkDetectionLatency(b *testing.B) { detectionLatency(b) }

func detectionLatency(b *testing.B) {
	c := benchClient(b)
	testenv.RequireBusyboxImage(b)
	h := newHarness(b, NewEngine(c), DefaultConfig(), nil)
	// The hook says when the source has handled a create; one scrape then
	// confirms the finding is in /metrics. Polling /metrics in a tight loop
	// instead would compete with the source for the two CPUs.
	handled := make(chan string, 4096)
	h.src.handled = func(ev events.Message) {
		if ev.Action == events.ActionCreate {
			select {
			case handled <- ev.Actor.ID:
			default:
			}
		}
	}
	h.run(b)
	handler := promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{})
	scrape := func() string {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	const creates = 200
	ctx := context.Background()
	var all, inStore []time.Duration
	var created []string
	b.Cleanup(func() { removeContainers(ctx, created) })
	b.ResetTimer()
	for range b.N {
		for range creates {
			res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
				Config: &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"true"},
					Labels: map[string]string{"dockward.test": "1", benchLabel: "1"}},
				HostConfig: &container.HostConfig{NetworkMode: "none", Privileged: true},
			})
			t0 := time.Now()
			if err != nil {
				b.Fatal(err)
			}
			created = append(created, res.ID)
			timeout := time.After(10 * time.Second)
			for id := ""; id != res.ID; {
				select {
				case id = <-handled:
				case <-timeout:
					b.Fatalf("create of %s never handled", res.ID[:12])
				}
			}
			inStore = append(inStore, time.Since(t0))
			want := `container_id="` + res.ID[:12] + `"`
			for !strings.Contains(scrape(), want) {
				if time.Since(t0) > 10*time.Second {
					b.Fatalf("finding for %s never appeared in /metrics", res.ID[:12])
				}
			}
			all = append(all, time.Since(t0))
		}
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(all, 0.50), "p50-ms")
	b.ReportMetric(pct(all, 0.99), "p99-ms")
	// The part before the confirming scrape: dockerd's event delivery,
	// the inspect, the rules and the store.
	b.ReportMetric(pct(inStore, 0.50), "p50-in-store-ms")
	b.ReportMetric(pct(inStore, 0.99), "p99-in-store-ms")
	b.ReportMetric(float64(len(all)), "creates")
}

// BenchmarkInventory1000 judges 1,000 created containers from scratch (list
// plus one inspect each, bounded concurrency) into a fresh store.
// RSS is the whole go test process's VmHWM/VmRSS (benchmark harness, its own
// client and the fixture's IDs included), an upper bound for the source.
func BenchmarkInventory1000(b *testing.B) {
	ids := fleet(b)
	c := benchClient(b)
	ctx := context.Background()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var h *harness
	for range b.N {
		h = newHarness(b, NewEngine(c), DefaultConfig(), nil)
		if err := h.src.Scan(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := h.src.stateCounts()["created"]; n < len(ids) {
		b.Fatalf("inventory saw %d created containers, want at least %d", n, len(ids))
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/inventory")
	b.ReportMetric(procStatus("VmRSS")/1024, "rss-MB")
	b.ReportMetric(procStatus("VmHWM")/1024, "peak-rss-MB")
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-inuse-MB")
	runtime.KeepAlive(h)
}

// BenchmarkDetectionLatencyWith1000: the same with the 1,000 benchmark
// containers on the host, so the confirming scrape carries their 8,000
// finding series.
func BenchmarkDetectionLatencyWith1000(b *testing.B) {
	fleet(b)
	detectionLatency(b)
}

// BenchmarkAgentProcessRSS1000 runs the real agent binary (containers
// source only) on a host with the 1,000 benchmark containers and reads the
// process's own VmRSS and VmHWM once its inventory is complete: the agent's
// memory, without the benchmark harness.
func BenchmarkAgentProcessRSS1000(b *testing.B) {
	ids := fleet(b)
	testenv.AgentBinary(b) // built before the timer starts
	cfg := filepath.Join(b.TempDir(), "containers.yml")
	if err := os.WriteFile(cfg, []byte("containers:\n  enabled: true\naudit:\n  enabled: false\nhost:\n  enabled: false\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var rss, hwm float64
	for range b.N {
		rss, hwm = runAgentUntilInventoried(b, cfg, len(ids))
	}
	b.StopTimer()
	b.ReportMetric(rss/1024, "agent-rss-MB")
	b.ReportMetric(hwm/1024, "agent-peak-rss-MB")
}

// BenchmarkMetricsRender1000 renders /metrics with the findings of 1,000
// containers (8 findings each here) in the store.
func BenchmarkMetricsRender1000(b *testing.B) {
	fleet(b)
	c := benchClient(b)
	h := newHarness(b, NewEngine(c), DefaultConfig(), nil)
	if err := h.src.Scan(context.Background()); err != nil {
		b.Fatal(err)
	}
	handler := promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	size := rec.Body.Len()
	series := strings.Count(rec.Body.String(), "\ndockward_finding{")
	b.ResetTimer()
	for range b.N {
		w := &discardWriter{header: http.Header{}}
		handler.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(series), "finding-series")
	b.ReportMetric(float64(size)/1024, "body-KiB")
}

type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return io.Discard.Write(p) }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkCostPerContainer: one op is judging one container the way the
// agent does on an event (one inspect, the rules, the store), sequentially.
// The baseline, measured in the same run, is one `docker inspect` CLI call
// per container, the unit docker-bench-security repeats about 37 times per
// container.
func BenchmarkCostPerContainer(b *testing.B) {
	ids := fleet(b)
	testenv.RequireCommand(b, "docker")
	const baselineCalls = 20
	start := time.Now()
	for i := range baselineCalls {
		if out, err := exec.Command("docker", "inspect", ids[i]).CombinedOutput(); err != nil {
			b.Fatalf("docker inspect: %v: %s", err, out)
		}
	}
	baseline := time.Since(start) / baselineCalls

	c := benchClient(b)
	h := newHarness(b, NewEngine(c), DefaultConfig(), nil)
	ctx := context.Background()
	if _, err := h.src.refreshHost(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := h.src.judgeOne(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/container")
	b.ReportMetric(float64(baseline.Microseconds())/1000, "baseline-cli-inspect-ms")
	b.ReportMetric(float64(baseline)/float64(per), "x-cheaper-than-one-cli-inspect")
	if h.findingCount(ids[0]) == 0 {
		b.Fatalf("judged containers have no findings")
	}
}

// BenchmarkJudge is the rules alone on a recorded inspect (no I/O).
func BenchmarkJudge(b *testing.B) {
	c := loadInspect(b, "api-1.41/risky.json")
	b.ReportAllocs()
	for range b.N {
		if len(Judge(c, HostFacts{})) == 0 {
			b.Fatal("no findings")
		}
	}
}
