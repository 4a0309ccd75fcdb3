package watcher

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

func TestAtomicRenameOfDaemonJSONIsJudgedWithinOneSecond(t *testing.T) {
	tr := newTree(t).minimalHost()
	// No bridge in the fake daemon: icc is judged from daemon.json.
	h := newHarness(t, tr, &fakeDocker{info: *hardenedInfo()}, func(c *Config) { c.RescanInterval = time.Hour }) // only fsnotify can notice
	testenv.RunSource(t, h.src)
	if _, ok := find(h.store.Open(), "daemon.icc_enabled", "dockerd"); ok {
		t.Fatal("icc finding open before the change")
	}
	// Write a new file beside it and rename it over daemon.json, as editors
	// and configuration management do: the old inode is replaced.
	tr.write("/etc/docker/.daemon.json.tmp", 0o644, `{"icc": true}`)
	start := time.Now()
	if err := os.Rename(tr.local("/etc/docker/.daemon.json.tmp"), tr.local("/etc/docker/daemon.json")); err != nil {
		t.Fatal(err)
	}
	if !h.eventuallyOpen(time.Second, "daemon.icc_enabled", "dockerd") {
		t.Fatalf("replacing daemon.json by rename was not judged within 1s")
	}
	t.Logf("judged %s after the rename", time.Since(start).Round(time.Millisecond))
	if got := h.changeCount("/etc/docker/daemon.json"); got != 1 {
		t.Errorf("dockward_file_changes_total{path=\"/etc/docker/daemon.json\"} = %v, want 1", got)
	}
	// A chmod on another watched file is judged too.
	tr.chmod("/etc/default/docker", 0o666)
	if !h.eventuallyOpen(time.Second, "file.mode", "/etc/default/docker") {
		t.Fatal("chmod of /etc/default/docker was not judged within 1s")
	}
}

func TestDaemonReloadRejudges(t *testing.T) {
	tr := newTree(t).minimalHost()
	docker := &fakeDocker{info: *hardenedInfo()}
	h := newHarness(t, tr, docker, func(c *Config) { c.RescanInterval = time.Hour })
	testenv.RunSource(t, h.src)
	if _, ok := find(h.store.Open(), "daemon.live_restore_off", "dockerd"); ok {
		t.Fatal("live-restore finding open before the reload")
	}
	docker.info.LiveRestoreEnabled = false // what /info reports after the reload
	h.src.DaemonReloaded(nil)
	if !h.eventuallyOpen(time.Second, "daemon.live_restore_off", "dockerd") {
		t.Fatal("a daemon reload did not re-judge the daemon settings")
	}
}

func TestPeriodicRescanIsTheBackstop(t *testing.T) {
	tr := newTree(t).minimalHost()
	// A debounce far longer than the rescan interval: the change below can
	// only be judged in time by the periodic rescan.
	h := newHarness(t, tr, nil, func(c *Config) { c.RescanInterval = time.Second; c.Debounce = 10 * time.Second })
	testenv.RunSource(t, h.src)
	tr.chmod("/etc/docker/daemon.json", 0o666)
	if !h.eventuallyOpen(3*time.Second, "file.mode", "/etc/docker/daemon.json") {
		t.Fatal("the periodic rescan did not judge the change")
	}
}

var errDockerDown = errors.New("cannot connect to the Docker daemon at unix:///var/run/docker.sock")

func TestHostMetrics(t *testing.T) {
	tr := newTree(t).minimalHost()
	h := newHarness(t, tr, &fakeDocker{infoErr: errDockerDown})
	h.scan()
	h.scan()
	want := `
# HELP dockward_host_scan_errors_total Errors while judging the host's Docker settings and files, by reason.
# TYPE dockward_host_scan_errors_total counter
dockward_host_scan_errors_total{reason="daemon_json_invalid"} 0
dockward_host_scan_errors_total{reason="docker_info"} 2
dockward_host_scan_errors_total{reason="dockerd_not_found"} 2
dockward_host_scan_errors_total{reason="package_db"} 0
dockward_host_scan_errors_total{reason="stat"} 0
dockward_host_scan_errors_total{reason="state_file"} 0
dockward_host_scan_errors_total{reason="symlink_loop"} 0
dockward_host_scan_errors_total{reason="unreadable"} 0
dockward_host_scan_errors_total{reason="watch"} 0
# HELP dockward_host_scans_total Complete judgements of the host's Docker settings, files and binaries.
# TYPE dockward_host_scans_total counter
dockward_host_scans_total 2
`
	if err := testutil.CollectAndCompare(h.reg, strings.NewReader(want), "dockward_host_scan_errors_total", "dockward_host_scans_total"); err != nil {
		t.Error(err)
	}
	// Every watched path has a change series from the first scan, at 0.
	wantChanges := `
# HELP dockward_file_changes_total Changes seen to a watched Docker file or binary (content, owner, mode or link target), by host path.
# TYPE dockward_file_changes_total counter
dockward_file_changes_total{path="/etc/default/docker"} 0
dockward_file_changes_total{path="/etc/docker"} 0
dockward_file_changes_total{path="/etc/docker/daemon.json"} 1
dockward_file_changes_total{path="/lib/systemd/system/docker.service"} 0
dockward_file_changes_total{path="/lib/systemd/system/docker.socket"} 0
dockward_file_changes_total{path="/var/run/docker.sock"} 0
`
	tr.chmod("/etc/docker/daemon.json", 0o640)
	h.scan()
	if err := testutil.CollectAndCompare(h.reg, strings.NewReader(wantChanges), "dockward_file_changes_total"); err != nil {
		t.Error(err)
	}
	if ts := testutil.ToFloat64(h.src.s.m.lastScan); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("dockward_host_last_scan_timestamp_seconds = %v, not recent", ts)
	}
}

func TestDaemonDownKeepsItsLastJudgement(t *testing.T) {
	tr := newTree(t).minimalHost()
	docker := &fakeDocker{info: *hardenedInfo()}
	docker.info.LiveRestoreEnabled = false
	h := newHarness(t, tr, docker)
	if _, ok := find(h.scan(), "daemon.live_restore_off", "dockerd"); !ok {
		t.Fatal("no live-restore finding while the daemon is up")
	}
	docker.infoErr = errDockerDown // and no dockerd process in the tree
	tr.write("/etc/docker/daemon.json", 0o644, `{"icc": false,}`)
	fs := h.scan()
	if _, ok := find(fs, "daemon.live_restore_off", "dockerd"); !ok {
		t.Error("the daemon's findings resolved because it was briefly unreachable")
	}
	if _, ok := find(fs, "daemon.config_invalid", "dockerd"); !ok {
		t.Error("daemon.json is still judged while the daemon is down")
	}
	// The kept findings still fail their checks; the others are not passed.
	rep := daemonReport(h)
	if rep["2.15"].Status != findings.StatusFail {
		t.Errorf("2.15 with the kept live-restore finding: %s", rep["2.15"].Status)
	}
	expectDaemonUnseen(t, rep, "2.15")
}

// daemonReport is the compliance report over the harness's findings and
// observations, by check.
func daemonReport(h *harness) map[string]findings.CheckResult {
	out := map[string]findings.CheckResult{}
	for _, r := range findings.Report(findings.ComplianceInput{Open: h.store.Open(), Observations: h.src.Observations()}).Results() {
		out[r.ID] = r
	}
	return out
}

// expectDaemonUnseen checks that no daemon check passes while dockerd is
// not seen: each is manual with the reason, except those failing.
func expectDaemonUnseen(t *testing.T, rep map[string]findings.CheckResult, failing ...string) {
	t.Helper()
	for _, id := range []string{"1.1.1", "2.2", "2.9", "2.14", "2.15", "2.16", "2.18", "4.5"} {
		r := rep[id]
		switch {
		case slices.Contains(failing, id):
		case r.Status == findings.StatusPass:
			t.Errorf("%s passes though dockerd was not seen: %q", id, r.Note)
		case r.Status == findings.StatusManual && !strings.Contains(r.Note, "no running dockerd was found") && id != "1.1.1":
			t.Errorf("%s is manual without saying dockerd was not seen: %q", id, r.Note)
		}
	}
}

func TestNoDockerNoDaemonFindings(t *testing.T) {
	tr := newTree(t) // no daemon, no daemon.json
	h := newHarness(t, tr, &fakeDocker{infoErr: errDockerDown})
	for _, f := range h.scan() {
		t.Errorf("a host without Docker got %s: %s", f.Rule, f.Message)
	}
	expectDaemonUnseen(t, daemonReport(h))
}

// TestScanWhileRunning is for the race detector: Scan (dockward scan, the
// API) may run while Run reacts to file events and reloads.
func TestScanWhileRunning(t *testing.T) {
	tr := newTree(t).minimalHost()
	h := newHarness(t, tr, &fakeDocker{info: *hardenedInfo()}, func(c *Config) { c.Debounce = time.Millisecond })
	testenv.RunSource(t, h.src)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			if err := h.src.Scan(context.Background()); err != nil {
				t.Error(err)
			}
			h.src.DaemonReloaded(nil)
			_ = h.src.DockerdPID()
		}
	}()
	for i := 0; i < 20; i++ {
		tr.chmod("/etc/docker/daemon.json", os.FileMode(0o644-(i%2)*0o40))
		time.Sleep(2 * time.Millisecond)
	}
	<-done
	tr.chmod("/etc/docker/daemon.json", 0o666)
	if !h.eventuallyOpen(time.Second, "file.mode", "/etc/docker/daemon.json") {
		t.Fatal("final chmod not judged")
	}
}
