package images

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockward/dockward/internal/testenv"
)

func dockerClient() (*client.Client, error) {
	return client.New(client.WithHost("unix://" + testenv.DockerSocket()))
}

// fakeEngineAPI serves the part of the Engine API the images source reads,
// for images whose inventories are all cached: the agent never exports.
func fakeEngineAPI(b *testing.B, ids []string) string {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	var list []map[string]any
	for _, id := range ids {
		list = append(list, map[string]any{"Id": id, "RepoTags": []string{"bench/" + shortID(id) + ":1"}, "Size": 1 << 20})
	}
	version := regexp.MustCompile(`^/v[0-9.]+`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch version.ReplaceAllString(r.URL.Path, "") {
		case "/_ping":
			w.Write([]byte("OK"))
		case "/images/json":
			json.NewEncoder(w).Encode(list)
		case "/containers/json":
			w.Write([]byte("[]"))
		case "/events":
			w.Header().Set("Content-Type", "application/json")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			http.Error(w, "not in this fake", http.StatusNotFound)
		}
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

// agentFixture writes an agent config with only the images source on,
// offline over a synthetic 100k-record Debian zip, n cached inventories,
// and a fake Engine API listing those n images.
func agentFixture(b *testing.B, n int) (cfg, host string) {
	b.Helper()
	dir := b.TempDir()
	names := benchNames(2000)
	writeSyntheticDB(b, filepath.Join(dir, "vulns"), names)
	ids := writeInventories(b, filepath.Join(dir, "images"), n, names)
	host = fakeEngineAPI(b, ids)
	cfg = filepath.Join(dir, "agent.yml")
	yaml := "containers:\n  enabled: false\naudit:\n  enabled: false\nhost:\n  enabled: false\n" +
		"images:\n  enabled: true\n  containers: false\n  cache_dir: " + filepath.Join(dir, "images") +
		"\nvulns:\n  db:\n    offline: true\n    dir: " + filepath.Join(dir, "vulns") + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	return cfg, host
}

// BenchmarkSteadyRSS100Inventories runs the agent binary with only the
// images source on, 100 cached inventories and the 100k-record zip, and
// reads its resident memory once it has judged them and settled.
func BenchmarkSteadyRSS100Inventories(b *testing.B) {
	run, base := agentBench(b, 100)
	b.ReportMetric(float64(run.steady)/(1<<20), "steady-MB")
	b.ReportMetric(float64(run.peak)/(1<<20), "peak-MB")
	b.ReportMetric(float64(base.maxRSS)/(1<<20), "docker-save-peak-MB")
	b.ReportMetric(float64(run.steady)/float64(base.maxRSS), "x-docker-save-RSS")
}

// agentBench runs the agent over n cached images b.N times, each time next
// to docker save of the bench image, and returns the last run of each.
func agentBench(b *testing.B, n int) (agentRun, measured) {
	buildBenchImage(b)
	cfg, host := agentFixture(b, n)
	var run agentRun
	var base measured
	for range b.N {
		base = dockerSave(b)
		run = runAgent(b, cfg, host, n)
	}
	return run, base
}

// agentRun is what one agent run measured.
type agentRun struct {
	judged       time.Duration // from start until every image was judged
	steady, peak int64         // VmRSS once settled, VmHWM
}

// runAgent starts the agent, waits until n images are judged (n
// image.vulnerable findings), lets it settle, and reads its memory.
func runAgent(b *testing.B, cfg, host string, n int) agentRun {
	b.Helper()
	start := time.Now()
	a := testenv.StartAgent(b, nil, "--config.file="+cfg, "--docker.host="+host)
	defer a.Stop()
	testenv.WaitFor(b, 2*time.Minute, fmt.Sprintf("%d images judged", n), func() bool {
		return vulnerableImages(a.URL("/metrics")) >= n
	})
	run := agentRun{judged: time.Since(start)}
	time.Sleep(5 * time.Second) // let the heap settle after the matching pass
	for range 5 {
		run.steady = max(run.steady, procStatus(b, a.Cmd.Process.Pid, "VmRSS"))
		time.Sleep(time.Second)
	}
	run.peak = procStatus(b, a.Cmd.Process.Pid, "VmHWM")
	return run
}

// vulnerableImages counts the image.vulnerable series in /metrics (the
// findings API would answer hundreds of megabytes at this scale).
func vulnerableImages(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "dockward_finding{") && strings.Contains(line, `rule="image.vulnerable"`) {
			n++
		}
	}
	return n
}

// procStatus reads one "kB" field of /proc/<pid>/status, in bytes.
func procStatus(b *testing.B, pid int, field string) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
