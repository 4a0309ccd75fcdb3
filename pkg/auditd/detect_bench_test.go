package auditd

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/hostfs"
)

// loopMain runs spec's syscall loop in this fresh process (forked while
// audit is on, so every call goes through audit's syscall exit) and prints
// its cost: "getppid:N" or "stat:N:PATH" prints ns per call;
// "ptrace:N:GAP" makes N failed PTRACE_ATTACH calls GAP apart, on PIDs
// above any pid_max, and prints "PID UNIXNANO" after each returns;
// "create:N:GAP:DIR" creates N files in DIR and prints "PATH UNIXNANO".
func loopMain(spec string) int {
	f := strings.Split(spec, ":")
	n, _ := strconv.Atoi(f[1])
	switch {
	case f[0] == "getppid":
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.Getppid()
		}
		fmt.Println(float64(time.Since(start).Nanoseconds()) / float64(n))
	case f[0] == "stat" && len(f) == 3:
		var st syscall.Stat_t
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.Stat(f[2], &st)
		}
		fmt.Println(float64(time.Since(start).Nanoseconds()) / float64(n))
	case f[0] == "create" && len(f) == 4:
		gap, _ := time.ParseDuration(f[2])
		for i := 0; i < n; i++ {
			p := fmt.Sprintf("%s/f%d", f[3], i)
			if fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_WRONLY, 0o600); err == nil {
				syscall.Close(fd)
			}
			fmt.Println(p, time.Now().UnixNano())
			time.Sleep(gap)
		}
	case f[0] == "ptrace" && len(f) == 3:
		gap, _ := time.ParseDuration(f[2])
		for i := 0; i < n; i++ {
			pid := 5_000_000 + i
			unix.PtraceAttach(pid) // ESRCH: no such process
			fmt.Println(pid, time.Now().UnixNano())
			time.Sleep(gap)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown loop %q\n", spec)
		return 2
	}
	return 0
}

const envLoop = "DOCKWARD_AUDIT_BENCH_LOOP"

// runLoop runs loopMain(spec) in a child and returns its output.
func runLoop(b *testing.B, spec string) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLoop+"="+spec)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("loop %s: %v", spec, err)
	}
	return string(out)
}

func loopCost(b *testing.B, spec string) float64 {
	b.Helper()
	v, err := strconv.ParseFloat(strings.TrimSpace(runLoop(b, spec)), 64)
	if err != nil {
		b.Fatalf("loop %s printed %v", spec, err)
	}
	return v
}

// BenchmarkDetectionOverhead measures what the detection rules cost every
// process: the kernel tests each rule of its exit list at every syscall
// exit. The kernel holds the agent's watch rules throughout (the
// baseline), and the detection rules are added and removed again between
// rounds: getppid and stat loops run in fresh processes (forked while
// audit is on, so every call goes through audit) with and without them,
// 15 rounds, the order alternating. The figure is the median of each
// round's ratio of the two adjacent measurements, which cancels the drift
// of a shared machine (target: at most 5% slower).
func BenchmarkDetectionOverhead(b *testing.B) {
	requireAudit(b)
	expectKernelRestored(b)
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ctl.Close() }) // after the cleanups below, which use it
	cfg := unicastConfig()
	det, err := newDetections(cfg, "/proc", hostfs.Root{})
	if err != nil {
		b.Fatal(err)
	}
	var watchWires, detWires [][]byte
	must := func(wire []byte, err error) []byte {
		if err != nil {
			b.Fatal(err)
		}
		return wire
	}
	for _, w := range ResolveWatches(cfg, hostfs.Root{}) {
		watchWires = append(watchWires, must(rules.Build(w.kernelRule(hostfs.Root{}))))
	}
	for _, r := range det.rules {
		detWires = append(detWires, must(r.Wire()))
	}
	enableAudit(b, ctl)
	loadRules(b, ctl, watchWires)
	b.Cleanup(func() { removeWires(b, ctl, watchWires) })
	loops := []string{"getppid:1000000", "stat:300000:/etc/hostname"}
	ratio := map[string][]float64{}
	cost := map[string][2][]float64{}
	for i := 0; i < b.N; i++ {
		for round := 0; round < 15; round++ {
			var got [2]map[string]float64
			for _, with := range []bool{round%2 == 1, round%2 == 0} {
				if with {
					loadRules(b, ctl, detWires)
				}
				m := map[string]float64{}
				for _, loop := range loops {
					m[loop] = loopCost(b, loop)
				}
				got[boolIndex(with)] = m
				if with {
					removeWires(b, ctl, detWires)
				}
			}
			for _, loop := range loops {
				ratio[loop] = append(ratio[loop], got[1][loop]/got[0][loop])
				c := cost[loop]
				c[0], c[1] = append(c[0], got[0][loop]), append(c[1], got[1][loop])
				cost[loop] = c
			}
		}
	}
	for _, loop := range loops {
		name := strings.SplitN(loop, ":", 2)[0]
		r := slices.Clone(ratio[loop])
		slices.Sort(r)
		b.ReportMetric(slices.Min(cost[loop][0]), name+"_ns_watches_only")
		b.ReportMetric(slices.Min(cost[loop][1]), name+"_ns_with_detections")
		b.ReportMetric((r[len(r)/2]-1)*100, name+"_slower_pct")
	}
	b.ReportMetric(float64(len(detWires)), "detection_rules")
	b.ReportMetric(float64(len(watchWires)), "watch_rules")
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// enableAudit turns audit on for the benchmark and off again after it,
// when it was off.
func enableAudit(b *testing.B, ctl *libaudit.AuditClient) {
	b.Helper()
	st, err := ctl.GetStatus()
	if err != nil {
		b.Fatal(err)
	}
	if st.Enabled != 0 {
		return
	}
	if err := ctl.SetEnabled(true, libaudit.WaitForReply); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ctl.SetEnabled(false, libaudit.WaitForReply) })
}

func loadRules(b *testing.B, ctl *libaudit.AuditClient, wires [][]byte) {
	b.Helper()
	for _, w := range wires {
		if err := rules.Add(ctl, w); err != nil {
			b.Fatal(err)
		}
	}
}

func removeWires(b *testing.B, ctl *libaudit.AuditClient, wires [][]byte) {
	b.Helper()
	for _, w := range wires {
		if err := ctl.DeleteRule(w); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkDetectionLatency measures the time from a detected call's
// return in another process to its "runtime detection" log line (stamped
// when the line is written), for 150 failed ptrace attach calls 20 ms apart
// (the rate the per-detection log limit lets through), and as the
// baseline, in the same run and the same way, from a write to a watched
// directory to its "audit event by an unexpected writer" line.
func BenchmarkDetectionLatency(b *testing.B) {
	requireAudit(b)
	expectKernelRestored(b)
	dir := b.TempDir()
	cfg := unicastConfig()
	cfg.Watches = []WatchConfig{{Path: dir, Key: "bench_latency", Kind: KindData}}
	stamps := &lineStamps{at: map[string]time.Time{}}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(stamps), zap.InfoLevel))
	startSource(b, cfg, Deps{Log: log})
	var det, base []float64
	for i := 0; i < b.N; i++ {
		det = append(det, latencies(b, stamps, "ptrace:150:20ms", "ptrace:")...)
		base = append(base, latencies(b, stamps, "create:150:20ms:"+dir, "write:")...)
	}
	for _, m := range []struct {
		name string
		v    []float64
	}{{"detection", det}, {"file_event", base}} {
		slices.Sort(m.v)
		b.ReportMetric(m.v[len(m.v)/2], m.name+"_p50_ms")
		b.ReportMetric(m.v[len(m.v)*99/100], m.name+"_p99_ms")
		b.ReportMetric(m.v[len(m.v)-1], m.name+"_max_ms")
	}
	b.ReportMetric(float64(len(det)), "samples")
}

// latencies runs the loop and returns, for each call it made, the time in
// ms from the call's return to the line stamped under prefix+its id.
func latencies(b *testing.B, stamps *lineStamps, loop, prefix string) []float64 {
	b.Helper()
	var out []float64
	for _, line := range strings.Split(strings.TrimSpace(runLoop(b, loop)), "\n") {
		f := strings.Fields(line)
		called, _ := strconv.ParseInt(f[1], 10, 64)
		var at time.Time
		found := testenv.Eventually(2*time.Second, func() bool {
			at = stamps.get(prefix + f[0])
			return !at.IsZero()
		})
		if !found {
			b.Fatalf("%s: no log line for %s within 2s", loop, f[0])
		}
		out = append(out, float64(at.UnixNano()-called)/1e6)
	}
	return out
}

// lineStamps is a log sink that notes when each line for a ptrace attach
// detection (by the target PID its detail names) or for a write to a
// watched directory (by its path) is written.
type lineStamps struct {
	mu sync.Mutex
	at map[string]time.Time
}

var (
	ptraceDetail = regexp.MustCompile(`"msg":"runtime detection".*"detail":"PTRACE_ATTACH pid (\d+)"`)
	writePath    = regexp.MustCompile(`"msg":"audit event by an unexpected writer".*?"path":"([^"]+)"`)
)

func (s *lineStamps) Write(p []byte) (int, error) {
	now := time.Now()
	var id string
	if m := ptraceDetail.FindSubmatch(p); m != nil {
		id = "ptrace:" + string(m[1])
	} else if m := writePath.FindSubmatch(p); m != nil {
		id = "write:" + string(m[1])
	}
	if id != "" {
		s.mu.Lock()
		s.at[id] = now
		s.mu.Unlock()
	}
	return len(p), nil
}

func (s *lineStamps) get(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[id]
}
