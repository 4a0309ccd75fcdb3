package containers

import (
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// The SELinux path (CIS 5.3) end to end: a dockerd whose GET /info says
// name=selinux makes label=disable and type:spc_t findings; the same
// containers on the same fake without it are not reported.
func TestFakeSELinuxFromInfo(t *testing.T) {
	for _, selinux := range []bool{true, false} {
		f := newFakeEngine(t)
		if selinux {
			f.security = append(f.security, "name=selinux")
		}
		for i, opt := range []string{"label=disable", "label:type:spc_t", "label=level:s0:c1,c2"} {
			c := fakeContainer(hexID(300+i), "sel")
			c.HostConfig.SecurityOpt = []string{opt}
			f.put(c)
		}
		f.start()
		h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
		h.run(t)
		for i, want := range []bool{selinux, selinux, false} {
			if _, got := h.rules(hexID(300 + i))["container.selinux_disabled"]; got != want {
				t.Errorf("SELinux host %v, container %d: finding %v, want %v", selinux, i, got, want)
			}
		}
	}
}

// A manager of a swarm with two managers, auto-lock on, and one encrypted
// and one plain overlay network; the agent cannot read dockerd's sockets
// (no /proc under its root), so 7.2 is observed as manual, not passed.
func TestFakeSwarmManager(t *testing.T) {
	f := newFakeEngine(t)
	f.swarm = swarm.Info{NodeID: "n1", NodeAddr: "10.0.0.1", LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true,
		Managers: 2, Nodes: 2, RemoteManagers: []swarm.Peer{{NodeID: "n1", Addr: "10.0.0.1:2377"}, {NodeID: "n2", Addr: "10.0.0.2:2377"}}}
	f.autolock = true
	f.networks = []network.Summary{
		{Network: network.Network{ID: "net1", Name: "front", Driver: "overlay", Scope: "swarm"}},
		{Network: network.Network{ID: "net2", Name: "back", Driver: "overlay", Scope: "swarm", Options: map[string]string{"encrypted": ""}}},
	}
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.src.root = hostfs.At(t.TempDir())
	h.run(t)
	if err := findings.CheckKinds(h.store.Open()); err != nil {
		t.Error(err)
	}
	got := h.swarmFindings()
	if len(got["swarm.active"]) != 1 || len(got["swarm.managers"]) != 1 || len(got["swarm.autolock_off"]) != 0 ||
		strings.Join(got["swarm.overlay_unencrypted"], ",") != "front" || len(got["swarm.listen_all_interfaces"]) != 0 {
		t.Fatalf("swarm findings: %v", got)
	}
	rep := findings.Report(findings.ComplianceInput{Open: h.store.Open(), Observations: h.src.Observations()})
	for _, r := range rep.Results() {
		want := map[string]findings.Status{"5.1": findings.StatusFail, "7.1": findings.StatusFail, "7.2": findings.StatusManual,
			"7.3": findings.StatusFail, "7.5": findings.StatusPass}[r.ID]
		if want != "" && r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.ID, r.Status, r.Note, want)
		}
		if r.ID == "7.2" && !strings.Contains(r.Note, "could not be read") {
			t.Errorf("7.2 does not say why it is manual: %q", r.Note)
		}
	}
	// A worker judges swarm mode and its networks, never the managers.
	f.mu.Lock()
	f.swarm.ControlAvailable, f.swarm.Managers = false, 0
	f.mu.Unlock()
	if err := h.src.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := h.swarmFindings(); len(got["swarm.active"]) != 1 || len(got["swarm.managers"]) != 0 {
		t.Errorf("on a worker: %v", got)
	}
	// A worker cannot see the managers: their checks are manual, not passed.
	for _, r := range h.report() {
		want := map[string]findings.Status{"5.1": findings.StatusFail, "7.1": findings.StatusManual, "7.2": findings.StatusManual,
			"7.3": findings.StatusFail, "7.5": findings.StatusManual}[r.ID]
		if want != "" && r.Status != want || want == findings.StatusManual && !strings.Contains(r.Note, "swarm worker") {
			t.Errorf("on a worker, %s: %s (%s), want %s", r.ID, r.Status, r.Note, want)
		}
	}
}

// Where the agent cannot read a process's /proc entries, argv[0] of GET
// /containers/{id}/top is the fallback, and the finding says so.
func TestFakeSSHDByCommandLineWithoutProc(t *testing.T) {
	f := newFakeEngine(t)
	c := fakeContainer(hexID(310), "ssh")
	c.State.Status, c.State.Running = "running", true
	f.put(c)
	f.top = map[string][][]string{c.ID: {
		{"root", "4242", "1", "0", "10:00", "?", "00:00:00", "/usr/sbin/sshd -D"},
		{"root", "4243", "1", "0", "10:00", "?", "00:00:00", "sleep 600"},
	}}
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.src.root = hostfs.At(t.TempDir())
	h.run(t)
	var sshd *findings.Finding
	for _, fd := range h.store.Open() {
		if fd.Rule == "container.sshd" {
			sshd = &fd
		}
	}
	if sshd == nil || sshd.Details["processes"] != "pid 4242 /usr/sbin/sshd" || !strings.Contains(sshd.Details["matched_by"], "command line") {
		t.Fatalf("sshd finding %+v", sshd)
	}
	testenv.WaitFor(t, 5*time.Second, "subscription", f.subscribed)
	c.State.Status, c.State.Running = "exited", false
	f.put(c)
	f.emit("container", "die", c.ID, nil)
	testenv.WaitFor(t, 5*time.Second, "stopped container judged without processes", func() bool {
		return h.rules(c.ID)["container.sshd"] == ""
	})
}

// Images are judged at inventory and from their events: a tag judges the
// image again under its new name (the same subject, keyed by ID), a delete
// forgets it.
func TestFakeImageEvents(t *testing.T) {
	f := newFakeEngine(t)
	id := "sha256:" + strings.Repeat("be", 32)
	f.images[id] = fakeImage{inspect: image.InspectResponse{ID: id, RepoTags: []string{"app:1"}, Config: &dockerspec.DockerOCIImageConfig{}},
		history: []image.HistoryResponseItem{{CreatedBy: "/bin/sh -c #(nop) ADD file:1 in /"}}}
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.run(t)
	names := func() map[string]string {
		out := map[string]string{}
		for _, fd := range h.store.Open() {
			if fd.Subject.ImageID == id {
				out[fd.Rule] = fd.Subject.Name
			}
		}
		return out
	}
	if got := names(); got["image.no_healthcheck"] != "app:1" || got["image.add_instruction"] != "app:1" {
		t.Fatalf("at inventory: %v", got)
	}
	f.mu.Lock()
	img := f.images[id]
	img.inspect.RepoTags = []string{"app:1", "app:0"}
	f.images[id] = img
	f.mu.Unlock()
	f.emit(events.ImageEventType, "tag", id, map[string]string{"name": "app:0"})
	testenv.WaitFor(t, 5*time.Second, "the retagged image judged under its new name", func() bool { return names()["image.no_healthcheck"] == "app:0" })
	f.mu.Lock()
	delete(f.images, id)
	f.mu.Unlock()
	f.emit(events.ImageEventType, "delete", id, nil)
	testenv.WaitFor(t, 5*time.Second, "the deleted image forgotten", func() bool { return len(names()) == 0 })
	if n, _ := h.src.imageCounts(); n != 0 {
		t.Errorf("%d images still counted", n)
	}
}
