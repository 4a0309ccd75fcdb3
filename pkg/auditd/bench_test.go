package auditd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/auditd/record"
)

// Child-process roles of the test binary, chosen by environment variable,
// so that RSS and CPU are measured for the streaming reader and the agent
// alone.
const (
	envReplay = "DOCKWARD_AUDIT_BENCH_REPLAY" // stream FILE through the pipeline
	envStorm  = "DOCKWARD_AUDIT_BENCH_STORM"  // PATH:RATE:SECONDS open-for-write storm
	envDaemon = "DOCKWARD_AUDIT_TEST_DAEMON"  // run the source in unicast mode until SIGTERM
)

func TestMain(m *testing.M) {
	if f := os.Getenv(envReplay); f != "" {
		os.Exit(replayMain(f))
	}
	if s := os.Getenv(envStorm); s != "" {
		os.Exit(stormMain(s))
	}
	if os.Getenv(envDaemon) != "" {
		os.Exit(daemonMain())
	}
	if c := os.Getenv(envCall); c != "" {
		os.Exit(callMain(c))
	}
	if l := os.Getenv(envLoop); l != "" {
		os.Exit(loopMain(l))
	}
	code := m.Run()
	if benchLogPath != "" {
		os.RemoveAll(filepath.Dir(benchLogPath))
	}
	os.Exit(code)
}

// benchRecords is the size of the offline benchmark's log.
const benchRecords = 1_000_000

// writeBenchLog writes a RAW auditd log of at least n records by
// replicating the records captured from this machine's kernel
// (testdata/raw.log), each copy with new serials and later timestamps.
func writeBenchLog(path string, n int) (int, error) {
	data, err := os.ReadFile("testdata/raw.log")
	if err != nil {
		return 0, err
	}
	type rec struct {
		h    record.Header
		name string
		body string
	}
	var recs []rec
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		h, body, err := record.ParseLogLine(l)
		if err != nil {
			return 0, fmt.Errorf("testdata/raw.log: %w", err)
		}
		name := l[len("type="):strings.IndexByte(l, ' ')]
		recs = append(recs, rec{h, name, body})
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := recs[0].h.Serial
	span := recs[len(recs)-1].h.Serial - base + 1
	written := 0
	for round := uint32(0); written < n; round++ {
		for _, r := range recs {
			serial := r.h.Serial - base + 1 + round*span
			ms := int64(r.h.Msec) + int64(round)
			fmt.Fprintf(w, "type=%s msg=audit(%d.%03d:%d): %s\n", r.name, r.h.Sec+ms/1000, ms%1000, serial, r.body)
			written++
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return written, f.Close()
}

var (
	benchLogOnce sync.Once
	benchLogPath string
	benchLogN    int
	benchLogErr  error
)

// benchLog writes the 1M-record log once per test process into a
// temporary directory that TestMain removes when the benchmarks are done.
func benchLog(b *testing.B) (string, int) {
	benchLogOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dockward-audit-bench-")
		if err != nil {
			benchLogErr = err
			return
		}
		benchLogPath = filepath.Join(dir, "audit.log")
		benchLogN, benchLogErr = writeBenchLog(benchLogPath, benchRecords)
	})
	if benchLogErr != nil {
		b.Fatal(benchLogErr)
	}
	return benchLogPath, benchLogN
}

func benchWatches() []Watch {
	ws := testWatches()
	ws[1].Expected = []string{"/usr/bin/touch"} // some routine, some not
	return ws
}

// replayFile streams the log through the pipeline: parse, reassembly and
// classification; unexpected events are logged to a discarding logger at
// the production level, so the log line is built as in production.
func replayFile(path string) (records, events int, err error) {
	ws := benchWatches()
	keys := []string{}
	for _, w := range ws {
		keys = append(keys, w.Key)
	}
	m, err := newMetrics(nil, keys)
	if err != nil {
		return 0, 0, err
	}
	log := zap.New(zapcoreDiscard())
	p, err := newPipeline(ws, m, PipelineOptions{Log: log})
	if err != nil {
		return 0, 0, err
	}
	p.procRoot = "" // a replayed log: its processes are gone, do not look them up
	p.onEvent = func(*record.Event, Watch, bool) { events++ }
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			p.PushLine(string(line))
			records++
		}
		if err != nil {
			break
		}
	}
	p.Close()
	return records, events, nil
}

// replayMain is the child process measured for RSS.
func replayMain(path string) int {
	recs, evs, err := replayFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d %d %d\n", recs, evs, vmHWM())
	return 0
}

// libauditFile is the baseline: go-libaudit's ParseLogLine plus Data() on
// every line (no reassembly, which only makes dockward's side heavier).
func libauditFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 256<<10), 1<<20)
	n := 0
	for sc.Scan() {
		msg, err := auparse.ParseLogLine(sc.Text())
		if err != nil {
			return n, err
		}
		if _, err := msg.Data(); err != nil && msg.RecordType != auparse.AUDIT_EOE {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}

// BenchmarkOffline streams at least 1M replicated kernel records through
// dockward's pipeline and through go-libaudit's ParseLogLine+Data() in the
// same run, measures the streaming child's peak RSS, and times
// `ausearch -if FILE -k docker_etc -i` on the same file.
func BenchmarkOffline(b *testing.B) {
	path, n := benchLog(b)
	st, _ := os.Stat(path)
	b.Logf("log: %d records, %d MB", n, st.Size()>>20)
	var dwDur, laDur, ausDur time.Duration
	var rssKB int64
	for i := 0; i < b.N; i++ {
		start := time.Now()
		recs, evs, err := replayFile(path)
		dwDur += time.Since(start)
		if err != nil || recs != n || evs == 0 {
			b.Fatalf("replay: %d records, %d events, %v", recs, evs, err)
		}
		start = time.Now()
		if got, err := libauditFile(path); err != nil || got != n {
			b.Fatalf("go-libaudit: %d records, %v", got, err)
		}
		laDur += time.Since(start)

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envReplay+"="+path)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("replay child: %v", err)
		}
		// The child reports its own VmHWM: rusage's maxrss of a child
		// also counts the parent's pages from before exec.
		f := strings.Fields(string(out))
		if len(f) != 3 || f[0] != strconv.Itoa(n) {
			b.Fatalf("replay child printed %q", out)
		}
		if kb, _ := strconv.ParseInt(f[2], 10, 64); kb > rssKB {
			rssKB = kb
		}

		if aus, err := exec.LookPath("ausearch"); err == nil {
			start = time.Now()
			c := exec.Command(aus, "-if", path, "-k", "docker_etc", "-i")
			c.Stdout, c.Stderr = nil, nil
			_ = c.Run() // exits 1 when nothing matches; the time is what counts
			ausDur += time.Since(start)
		}
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() }
	b.ReportMetric(per(dwDur), "dockward_records/s")
	b.ReportMetric(per(laDur), "libaudit_records/s")
	b.ReportMetric(per(dwDur)/per(laDur), "speedup_x")
	b.ReportMetric(float64(rssKB)/1024, "child_peak_rss_MB")
	if ausDur > 0 {
		b.ReportMetric(ausDur.Seconds()/float64(b.N), "ausearch_s")
		b.ReportMetric(dwDur.Seconds()/float64(b.N), "dockward_s")
	}
}

// BenchmarkParseRecord is the per-record cost of the two parsers alone.
func BenchmarkParseRecord(b *testing.B) {
	data, err := os.ReadFile("testdata/raw.log")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	b.Run("dockward", func(b *testing.B) {
		var ev record.Event
		for i := 0; i < b.N; i++ {
			h, body, err := record.ParseLogLine(lines[i%len(lines)])
			if err != nil {
				b.Fatal(err)
			}
			msg := &auparse.AuditMessage{RecordType: h.Type, Sequence: h.Serial, RawData: body}
			record.BuildEvent([]*auparse.AuditMessage{msg}, &ev)
		}
	})
	b.Run("libaudit_header_only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := auparse.ParseLogLine(lines[i%len(lines)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("libaudit_data", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m, err := auparse.ParseLogLine(lines[i%len(lines)])
			if err != nil {
				b.Fatal(err)
			}
			m.Data()
		}
	})
}

// stormMain opens PATH for writing RATE times a second for SECONDS,
// paced every millisecond, and prints how many opens it made.
func stormMain(spec string) int {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "storm spec PATH:RATE:SECONDS")
		return 2
	}
	rate, _ := strconv.Atoi(parts[1])
	secs, _ := strconv.ParseFloat(parts[2], 64)
	start := time.Now()
	end := start.Add(time.Duration(secs * float64(time.Second)))
	done := 0
	for now := start; now.Before(end); now = time.Now() {
		due := int(now.Sub(start).Seconds() * float64(rate))
		for ; done < due; done++ {
			fd, err := syscall.Open(parts[0], syscall.O_WRONLY, 0)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			syscall.Close(fd)
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println(done)
	return 0
}

// BenchmarkLiveStorm runs the agent's source in unicast mode and a paced
// storm of open-for-write calls on a watched file from a child process:
// 20k events/s must lose nothing in the kernel with backlog 8192, and the
// source's CPU use is measured at 10k events/s (getrusage of this process,
// which holds only the source; the writer is the child).
func BenchmarkLiveStorm(b *testing.B) {
	requireAudit(b)
	expectKernelRestored(b)
	target, watches := burstTarget(b, "bench_storm")
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := unicastConfig()
	cfg.Watches = watches
	cfg.ExpectedWriters = map[string][]string{"bench_storm": {self}}
	src := startRetrying(b, func() *liveSource {
		// As the agent runs it: no log kept in memory, no test hook.
		l := newLiveSource(b, cfg, Deps{Log: zap.NewNop()})
		l.src.onEvent = nil
		return l
	}).src
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Close()
	for i := 0; i < b.N; i++ {
		opens, lost, _, seen := measureStorm(b, ctl, src, target, 20000, 5)
		b.ReportMetric(float64(opens)/5, "storm_events/s")
		b.ReportMetric(float64(lost), "kernel_lost_at_20k")
		b.ReportMetric(seen/float64(opens), "seen_fraction_at_20k")
		if lost != 0 || seen < float64(opens) {
			b.Errorf("at 20k events/s: %d opens, %v events seen, kernel lost %d", opens, seen, lost)
		}
		_, lost10, cpu, _ := measureStorm(b, ctl, src, target, 10000, 5)
		b.ReportMetric(cpu*100, "cpu_pct_of_core_at_10k")
		b.ReportMetric(float64(lost10), "kernel_lost_at_10k")
	}
	b.ReportMetric(counterValue(b, src.m.sequenceGaps), "sequence_gaps")
}

// measureStorm runs a storm of rate opens a second on target for secs,
// lets src drain what is queued, and returns the opens made, the records
// the kernel lost meanwhile, this process's CPU use as a fraction of one
// core, and the events src counted.
func measureStorm(b *testing.B, ctl *libaudit.AuditClient, src *Source, target string, rate int, secs float64) (opens int, lost uint32, cpu float64, seen float64) {
	counted := func() float64 { return eventTotal(b, src.m, "bench_storm", true) }
	st0, err := ctl.GetStatus()
	if err != nil {
		b.Fatal(err)
	}
	before := counted()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	opens = storm(b, target, rate, secs)
	// Let the source drain what is queued.
	testenv.Eventually(5*time.Second, func() bool { return counted()-before >= float64(opens) })
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	st1, err := ctl.GetStatus()
	if err != nil {
		b.Fatal(err)
	}
	used := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	return opens, st1.Lost - st0.Lost, used.Seconds() / wall.Seconds(), counted() - before
}

// zapcoreDiscard is a production JSON core at info level writing nowhere,
// so log lines are still encoded as in production.
func zapcoreDiscard() zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel)
}

// vmHWM is this process's peak resident set in kB (/proc/self/status).
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return -1
}
