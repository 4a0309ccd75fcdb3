package images

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/osvtest"
	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/images/inventory"
)

// The benchmarks measure real processes: each workload runs in a child
// process (this test binary, re-executed), whose peak RSS is its rusage
// Maxrss, next to `docker save` of the same 100 MB image in the same run.

const (
	benchImage = "dockward-bench-100mb:1"
	childEnv   = "DOCKWARD_IMAGES_BENCH_CHILD"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(testenv.MainRun(m))
}

// measured is one process's run.
type measured struct {
	wall   time.Duration
	maxRSS int64 // bytes
	out    string
}

// measure runs cmd to completion under GNU time and returns its wall time
// and peak RSS. The peak is GNU time's: Linux carries a process's RSS high
// water mark across execve, so a child started straight from this (large)
// test process would report the parent's memory; GNU time is small when it
// forks the command.
func measure(b *testing.B, cmd *exec.Cmd) measured {
	b.Helper()
	report := filepath.Join(b.TempDir(), "time")
	wrapped := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", report}, cmd.Args...)...)
	wrapped.Env, wrapped.Stdin = cmd.Env, cmd.Stdin
	var out strings.Builder
	wrapped.Stdout, wrapped.Stderr = &out, &out
	if cmd.Stdout != nil {
		wrapped.Stdout = cmd.Stdout
	}
	start := time.Now()
	if err := wrapped.Run(); err != nil {
		b.Fatalf("%v: %v\n%s", cmd.Args, err, out.String())
	}
	wall := time.Since(start)
	data, err := os.ReadFile(report)
	if err != nil {
		b.Fatal(err)
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		b.Fatalf("GNU time reported %q: %v", data, err)
	}
	return measured{wall: wall, maxRSS: kb * 1024, out: out.String()}
}

// child re-executes this test binary in mode with env.
func child(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	return cmd
}

// dockerSave is the baseline: `docker save` of the bench image to /dev/null.
func dockerSave(b *testing.B) measured {
	b.Helper()
	testenv.RequireCommand(b, "/usr/bin/time")
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	cmd := exec.Command("docker", "save", benchImage)
	cmd.Stdout = null
	return measure(b, cmd)
}

// buildBenchImage builds a 100 MB image of three layers: a Debian base
// with 400 installed packages, then two layers of incompressible files, the
// last one upgrading the package database. It is removed when b ends.
func buildBenchImage(b *testing.B) {
	b.Helper()
	testenv.RequireDocker(b)
	pkgs := make([]string, 400)
	for i := range pkgs {
		pkgs[i] = fmt.Sprintf("pkg%d 1.%d-1 src%d", i, i%10, i%150)
	}
	files := []testenv.ImageFile{bookwormRelease, testenv.DpkgStatus(pkgs...),
		{Path: "upgrade/status", Content: testenv.DpkgStanzas(append(pkgs, "extra 1.0-1")...)}}
	for i := range 50 {
		blob := make([]byte, 2<<20)
		if _, err := rand.Read(blob); err != nil {
			b.Fatal(err)
		}
		files = append(files, testenv.ImageFile{Path: fmt.Sprintf("data%d/blob%02d", i%2, i), Content: string(blob)})
	}
	testenv.BuildImage(b, benchImage, "FROM scratch\nCOPY bin/ /bin/\nCOPY etc/ /etc/\nCOPY var/ /var/\n"+
		"COPY data0/ /data0/\nCOPY data1/ /data1/\nCOPY upgrade/status /var/lib/dpkg/status\n", files...)
}

func report(b *testing.B, what measured, base measured) {
	b.ReportMetric(what.wall.Seconds(), "s")
	b.ReportMetric(float64(what.maxRSS)/(1<<20), "peak-MB")
	b.ReportMetric(base.wall.Seconds(), "docker-save-s")
	b.ReportMetric(float64(base.maxRSS)/(1<<20), "docker-save-peak-MB")
	b.ReportMetric(what.wall.Seconds()/base.wall.Seconds(), "x-docker-save-time")
	b.ReportMetric(float64(what.maxRSS)/float64(base.maxRSS), "x-docker-save-RSS")
}

// BenchmarkExtract100MBImage: export and extract the 100 MB image in a
// child process, against docker save of it.
func BenchmarkExtract100MBImage(b *testing.B) {
	buildBenchImage(b)
	tmp := b.TempDir()
	var got, base measured
	for range b.N {
		base = dockerSave(b)
		got = measure(b, child("extract", "BENCH_IMAGE="+benchImage, "BENCH_TMP="+tmp))
	}
	if !strings.Contains(got.out, "packages=401") {
		b.Fatalf("the child did not read the upgraded database: %s", got.out)
	}
	report(b, got, base)
}

// BenchmarkMatch1000Images100kRecords runs the agent binary with only the
// images source on, 1,000 cached inventories (the Engine lists the images,
// the agent exports none) and a synthetic 100k-record Debian zip: the time
// until all 1,000 are judged, and the agent's peak RSS. Targets: 10 s and
// 150 MB.
func BenchmarkMatch1000Images100kRecords(b *testing.B) {
	run, base := agentBench(b, 1000)
	report(b, measured{wall: run.judged, maxRSS: run.peak}, base)
	if run.peak > 150<<20 {
		b.Errorf("peak RSS %d MB is over the 150 MB target", run.peak>>20)
	}
}

func benchNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("pkg%d", i)
	}
	return out
}

func writeSyntheticDB(b *testing.B, dir string, names []string) {
	b.Helper()
	p := filepath.Join(dir, "Debian", "all.zip")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := osvtest.Synthetic(f, 100_000, bookworm, names); err != nil {
		b.Fatal(err)
	}
}

// writeInventories caches n image inventories of 200 packages each, drawn
// from names with versions the synthetic records partly affect.
func writeInventories(b *testing.B, dir string, n int, names []string) []string {
	b.Helper()
	c := inventory.Cache{Dir: dir}
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(fmt.Sprint("bench-image-", i))))
		inv := inventory.Inventory{Format: inventory.Format, ID: ids[i], OS: "Debian GNU/Linux 12 (bookworm)", OSID: "debian"}
		for j := range 200 {
			name := names[(i*37+j*11)%len(names)]
			inv.Packages = append(inv.Packages, inventory.Package{Name: name, Version: fmt.Sprintf("1.%d-1", (i+j)%10), Ecosystem: bookworm})
		}
		if err := c.Store(inv); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// runChild is the child side of the benchmarks.
func runChild(mode string) int {
	ctx := context.Background()
	var err error
	switch mode {
	case "extract":
		err = childExtract(ctx)
	default:
		err = fmt.Errorf("unknown bench child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func childExtract(ctx context.Context) error {
	c, err := dockerClient()
	if err != nil {
		return err
	}
	rc, err := c.ImageSave(ctx, []string{os.Getenv("BENCH_IMAGE")})
	if err != nil {
		return err
	}
	defer rc.Close()
	x := inventory.NewExtractor(inventory.Limits{MaxImageSize: 4 << 30, MaxDatabaseSize: 64 << 20}, os.Getenv("BENCH_TMP"), nil)
	inv, err := x.FromExport(ctx, "bench", rc)
	if err != nil {
		return err
	}
	fmt.Printf("packages=%d\n", len(inv.Packages))
	return nil
}
