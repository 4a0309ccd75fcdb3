package images

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/images/inventory"
)

// containerState is one running container.
type containerState struct {
	id, name, imageID string
	labels            map[string]string
	pid               int
	// stamp is the size and time of its package databases when last read,
	// so an unchanged container is not read again on every rescan.
	stamp string
	// inv is its own inventory, read through /proc/<pid>/root; nil when it
	// could not be read that way.
	inv *inventory.Inventory
	// unreadable says why its package databases could not be read.
	unreadable string
	// changed lists package database paths the Engine's changes API says
	// the container changed (used when /proc/<pid>/root is out of reach).
	changed []string
}

// syncContainers reads every running container's packages. Containers that
// stopped are forgotten: a stopped container runs nothing.
func (s *Source) syncContainers(ctx context.Context) error {
	if !s.cfg.Containers {
		return nil
	}
	list, err := s.eng.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return fmt.Errorf("listing running containers: %w", err)
	}
	seen := make(map[string]bool, len(list.Items))
	for _, it := range list.Items {
		seen[it.ID] = true
		c := s.containers[it.ID]
		if c == nil {
			ins, err := s.eng.ContainerInspect(ctx, it.ID, client.ContainerInspectOptions{})
			if err != nil || ins.Container.State == nil || ins.Container.State.Pid == 0 {
				continue // gone or not started yet; the next event or rescan sees it
			}
			c = &containerState{id: it.ID, name: strings.TrimPrefix(ins.Container.Name, "/"),
				imageID: ins.Container.Image, pid: ins.Container.State.Pid}
			if ins.Container.Config != nil {
				c.labels = ins.Container.Config.Labels
			}
			s.containers[it.ID] = c
		}
		s.readContainer(ctx, c)
	}
	for id := range s.containers {
		if !seen[id] {
			delete(s.containers, id)
		}
	}
	s.containersListed = true
	return nil
}

// readContainer reads a container's packages through /proc/<pid>/root,
// opened with os.OpenRoot so no symlink inside it reaches the host. Where
// the agent may not open it (no CAP_SYS_PTRACE, another PID namespace) the
// Engine's changes API tells whether a package database changed.
func (s *Source) readContainer(ctx context.Context, c *containerState) {
	rootPath := filepath.Join(s.cfg.ProcDir, strconv.Itoa(c.pid), "root")
	root, err := os.OpenRoot(rootPath)
	if err != nil {
		s.m.scanErrors.WithLabelValues("proc_unreadable").Inc()
		s.log.Debug("container root not readable; using the changes API", zap.String("container", c.name), zap.Error(err))
		c.inv, c.stamp = nil, ""
		s.diffContainer(ctx, c)
		return
	}
	defer root.Close()
	stamp := stampOf(root)
	if stamp == c.stamp && (c.inv != nil || c.unreadable != "") {
		return
	}
	inv, err := s.extract.FromRoot(ctx, c.id, root)
	c.stamp, c.unreadable, c.changed = stamp, "", nil
	if err != nil {
		c.inv, c.unreadable = nil, err.Error()
		s.m.scanErrors.WithLabelValues(inventory.ReasonUnreadable).Inc()
		return
	}
	c.inv = &inv
	var unreadable []string
	for _, sk := range inv.Skipped {
		if sk.Reason == inventory.ReasonUnreadable {
			unreadable = append(unreadable, sk.Detail)
			s.m.scanErrors.WithLabelValues(sk.Reason).Inc()
		}
	}
	c.unreadable = strings.Join(unreadable, "; ")
}

// stampOf is the size and modification time of every package database
// present under root; a change in any of them means reading again.
func stampOf(root *os.Root) string {
	var b strings.Builder
	for _, p := range inventory.Databases {
		st, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			fmt.Fprintf(&b, "%s:%v;", p, err)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d:%s;", p, st.Size(), st.ModTime().UnixNano(), st.Mode())
	}
	return b.String()
}

// diffContainer asks the Engine which package databases the container
// changed since its image (GET /containers/{id}/changes, a read).
func (s *Source) diffContainer(ctx context.Context, c *containerState) {
	res, err := s.eng.ContainerDiff(ctx, c.id, client.ContainerDiffOptions{})
	if err != nil {
		s.log.Debug("container changes", zap.String("container", c.name), zap.Error(err))
		return
	}
	c.changed = changedDatabases(res.Changes)
}

func changedDatabases(changes []container.FilesystemChange) []string {
	var out []string
	for _, ch := range changes {
		p := strings.TrimPrefix(ch.Path, "/")
		for _, db := range inventory.Databases {
			if p == db || strings.HasPrefix(p, db+"/") {
				out = append(out, ch.Kind.String()+" /"+p)
			}
		}
	}
	return out
}
