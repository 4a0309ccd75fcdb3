package detect

import (
	"path"

	"github.com/dockward/dockward/pkg/hostfs"
)

// ReleaseAgentFiles lists the release_agent file at the root of every
// cgroup v1 hierarchy among the host's mounts, once per hierarchy: only a
// hierarchy's root holds release_agent, the program the kernel runs as
// root in the host's namespaces when a cgroup whose notify_on_release is
// set empties. notify_on_release is in every cgroup, and the escape sets
// it in a cgroup it creates, which no rule can name beforehand; the
// release_agent write it needs can be. A hierarchy mounted only later, or
// only inside a container, is not listed either: the kernel watches files,
// not names, so the mount that creates it is what shows
// (mount_in_container).
func ReleaseAgentFiles(mounts []hostfs.Mount) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.FSType != "cgroup" || m.Root != "/" || seen[m.Dev] {
			continue
		}
		seen[m.Dev] = true
		out = append(out, path.Join(m.Point, "release_agent"))
	}
	return out
}
