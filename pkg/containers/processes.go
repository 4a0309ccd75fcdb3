package containers

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
)

// sshdNames are the executables of an SSH daemon: OpenSSH's listener, the
// per-connection process newer releases start, and Dropbear.
var sshdNames = map[string]bool{"sshd": true, "sshd-session": true, "dropbear": true}

// runningProcess is one row of GET /containers/{id}/top.
type runningProcess struct {
	pid  int    // in the host's PID namespace, as dockerd reports it
	argv string // the command line ps shows (argv, which a process can set)
}

// processFindings judges what runs inside a running container (CIS 5.7):
// an SSH daemon, matched by the executable the kernel runs for the process
// (/proc/PID/exe, which the process cannot rename) rather than by its name
// or argv. Each PID is first proven to still be the container's through
// /proc/PID/cgroup. Only where the agent cannot read a process's /proc
// entries (outside the host's PID namespace) is argv[0] used, and the
// finding says so.
func (s *Source) processFindings(ctx context.Context, c container.InspectResponse) []findings.Finding {
	if c.State == nil || !c.State.Running || c.State.Paused {
		return nil
	}
	procs, err := s.top(ctx, c.ID)
	if err != nil {
		s.log.Debug("listing a container's processes failed; sshd is judged at the next rescan",
			zap.String("container", findings.ShortID(c.ID)), zap.Error(err))
		return nil
	}
	var byExe, byArgv []string
	for _, p := range procs {
		exe, seen := s.executable(c.ID, p.pid)
		switch {
		case seen && sshdNames[path.Base(exe)]:
			byExe = append(byExe, fmt.Sprintf("pid %d %s", p.pid, exe))
		case !seen && sshdNames[path.Base(firstWord(p.argv))]:
			byArgv = append(byArgv, fmt.Sprintf("pid %d %s", p.pid, firstWord(p.argv)))
		}
	}
	if len(byExe)+len(byArgv) == 0 {
		return nil
	}
	cfg := c.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	subj := findings.ContainerSubject(c.ID, c.Name, cfg.Image, cfg.Labels)
	f := findings.New("container.sshd", subj, "an SSH daemon runs in the container: "+strings.Join(append(byExe, byArgv...), ", "))
	f = f.With("processes", strings.Join(append(byExe, byArgv...), ","))
	if len(byArgv) > 0 {
		f = f.With("matched_by", "command line (the agent cannot read /proc/PID/exe of those processes)")
	} else {
		f = f.With("matched_by", "executable")
	}
	return []findings.Finding{f}
}

// top lists a container's processes with their host PIDs.
func (s *Source) top(ctx context.Context, id string) ([]runningProcess, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.eng.ContainerTop(ctx, id, client.ContainerTopOptions{})
	if err != nil {
		return nil, fmt.Errorf("container top %s: %w", findings.ShortID(id), err)
	}
	pidCol, cmdCol := -1, -1
	for i, t := range res.Titles {
		switch t {
		case "PID":
			pidCol = i
		case "CMD", "COMMAND":
			cmdCol = i
		}
	}
	if pidCol < 0 || cmdCol < 0 {
		return nil, fmt.Errorf("container top %s: no PID or CMD column in %v", findings.ShortID(id), res.Titles)
	}
	var out []runningProcess
	for _, row := range res.Processes {
		if len(row) <= max(pidCol, cmdCol) {
			continue
		}
		pid, err := strconv.Atoi(row[pidCol])
		if err != nil || pid <= 0 {
			continue
		}
		out = append(out, runningProcess{pid: pid, argv: row[cmdCol]})
	}
	return out, nil
}

// executable returns the executable of host PID pid, and false when the
// agent cannot tell: /proc is not the host's, the process is gone, or its
// PID now belongs to something outside the container.
func (s *Source) executable(containerID string, pid int) (string, bool) {
	cg, err := s.root.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid), 64<<10)
	if err != nil || !strings.Contains(string(cg), containerID) {
		return "", false
	}
	exe, err := os.Readlink(s.root.Local(fmt.Sprintf("/proc/%d/exe", pid)))
	if err != nil {
		return "", false
	}
	return strings.TrimSuffix(exe, " (deleted)"), true
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
