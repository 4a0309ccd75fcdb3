package containers

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
)

// HostFacts are the daemon-wide settings a container rule depends on, read
// from GET /info SecurityOptions.
type HostFacts struct {
	// AppArmor is true when the host kernel has AppArmor enabled; without
	// it an "unconfined" profile means nothing.
	AppArmor bool
	// UsernsRemap is true when dockerd runs containers in a remapped user
	// namespace, so root in a container is not root on the host.
	UsernsRemap bool
	// NoNewPrivileges is the daemon default (daemon.json no-new-privileges).
	NoNewPrivileges bool
	// SELinux is true when dockerd runs with SELinux support (selinux-enabled);
	// without it a disabled label means nothing.
	SELinux bool
}

// hostFactsFrom reads the facts from GET /info's SecurityOptions.
func hostFactsFrom(info *dockerinfo.Info) HostFacts {
	var h HostFacts
	_, h.AppArmor = info.SecurityOption("apparmor")
	_, h.UsernsRemap = info.SecurityOption("userns")
	_, h.NoNewPrivileges = info.SecurityOption("no-new-privileges")
	_, h.SELinux = info.SecurityOption("selinux")
	return h
}

// sensitivePaths are host directories a bind source must not be or lie
// under (CIS 5.6). "/" itself is matched exactly: everything lies under it.
var sensitivePaths = []string{
	"/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/root",
	"/var/lib/docker", "/var/lib/kubelet", "/etc/kubernetes",
}

// socketPaths are the Engine and containerd sockets (CIS 5.32); a bind of
// any directory above one of them exposes it too.
var socketPaths = []string{
	"/var/run/docker.sock", "/run/docker.sock",
	"/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock",
}

// Judge returns every finding for one container inspect. It is a pure
// function of the inspect, the host facts and the ports allowed to be
// published, so the same container always yields the same findings whatever
// event triggered the judgement.
func Judge(c container.InspectResponse, host HostFacts, allowed ...PortAllowance) []findings.Finding {
	cfg := c.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	hc := c.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	subj := findings.ContainerSubject(c.ID, c.Name, cfg.Image, cfg.Labels)
	j := judgement{subj: subj}

	if hc.Privileged {
		j.add("container.privileged", "container runs with --privileged: all capabilities and host devices")
	}
	j.mounts(c.Mounts)
	j.namespaces(hc)
	if !hc.Privileged {
		// A privileged container holds every capability already; listing
		// them again would only repeat the critical finding.
		j.capabilities(hc.CapAdd, hc.CapDrop)
	}
	j.securityOpts(hc.SecurityOpt, c.AppArmorProfile, host)
	j.limits(hc)
	if isRootUser(cfg.User) && !(host.UsernsRemap && string(hc.UsernsMode) != "host") {
		j.add("container.runs_as_root", "container processes run as root on the host", "user", orDefault(cfg.User, "(image default: root)"))
	}
	if !hc.ReadonlyRootfs {
		j.add("container.writable_rootfs", "container root filesystem is writable")
	}
	if len(hc.Devices) > 0 {
		var devs []string
		for _, d := range hc.Devices {
			devs = append(devs, d.PathOnHost)
		}
		j.add("container.host_devices", "host devices are mapped into the container", "devices", strings.Join(devs, ","))
	}
	j.ports(hc)
	j.publishedPorts(hc, cfg.ExposedPorts, allowed)
	j.runtimeOptions(c, hc)
	if hc.RestartPolicy.Name == container.RestartPolicyOnFailure && hc.RestartPolicy.MaximumRetryCount > 5 {
		j.add("container.restart_retries", "on-failure restart policy retries more than 5 times",
			"maximum_retry_count", strconv.Itoa(hc.RestartPolicy.MaximumRetryCount))
	}
	if hc.CgroupParent != "" {
		j.add("container.cgroup_parent", "container uses a custom cgroup parent", "cgroup_parent", hc.CgroupParent)
	}
	if hcheck := cfg.Healthcheck; hcheck == nil || len(hcheck.Test) == 0 || hcheck.Test[0] == "NONE" {
		j.add("container.no_healthcheck", "container has no health check")
	}
	if names := secretEnvNames(cfg.Env); len(names) > 0 {
		j.add("container.secret_in_env", "a secret is passed in an environment variable (value withheld)",
			"variables", strings.Join(names, ","))
	}
	return j.out
}

type judgement struct {
	subj findings.Subject
	out  []findings.Finding
}

// add records a finding; details are key/value pairs.
func (j *judgement) add(rule, msg string, details ...string) *findings.Finding {
	f := findings.New(rule, j.subj, msg)
	if len(details) > 1 {
		f.Details = make(map[string]string, len(details)/2)
		for i := 0; i+1 < len(details); i += 2 {
			f.Details[details[i]] = details[i+1]
		}
	}
	j.out = append(j.out, f)
	return &j.out[len(j.out)-1]
}

// mounts aggregates per rule: one finding per (rule, container) is one
// series, so every offending mount is listed in its details.
func (j *judgement) mounts(mounts []container.MountPoint) {
	var shared, sockets, socketSources, sensitive []string
	sensitiveRW := false
	for _, m := range mounts {
		if m.Propagation == "shared" || m.Propagation == "rshared" {
			shared = append(shared, m.Source+":"+m.Destination+":"+string(m.Propagation))
		}
		if m.Type != "bind" || m.Source == "" {
			continue
		}
		src := path.Clean(m.Source)
		if sock, ok := exposesSocket(src); ok {
			socketSources = append(socketSources, src+":"+m.Destination)
			sockets = append(sockets, sock)
		}
		if sensitiveSource(src) {
			mode := "ro"
			if m.RW {
				mode, sensitiveRW = "rw", true
			}
			sensitive = append(sensitive, src+":"+m.Destination+":"+mode)
		}
	}
	if len(shared) > 0 {
		j.add("container.shared_propagation", "a mount uses shared propagation: "+strings.Join(shared, ", "),
			"mounts", strings.Join(shared, ","))
	}
	if len(sockets) > 0 {
		j.add("container.docker_socket_mount", "the "+sockets[0]+" socket is reachable through bind mount "+socketSources[0],
			"mounts", strings.Join(socketSources, ","), "socket", sockets[0])
	}
	if len(sensitive) > 0 {
		f := j.add("container.sensitive_mount", "sensitive host path bind-mounted: "+strings.Join(sensitive, ", "),
			"mounts", strings.Join(sensitive, ","))
		if !sensitiveRW {
			f.Severity = findings.Medium
		}
	}
}

// exposesSocket reports whether src is a socket or a directory above one.
func exposesSocket(src string) (string, bool) {
	for _, s := range socketPaths {
		if src == s || src == "/" || strings.HasPrefix(s, src+"/") {
			return s, true
		}
	}
	return "", false
}

func sensitiveSource(src string) bool {
	if src == "/" {
		return true
	}
	for _, p := range sensitivePaths {
		if src == p || strings.HasPrefix(src, p+"/") {
			return true
		}
	}
	return false
}

func (j *judgement) namespaces(hc *container.HostConfig) {
	ns := []struct {
		rule, name, mode string
	}{
		{"container.host_pid", "PID", string(hc.PidMode)},
		{"container.host_ipc", "IPC", string(hc.IpcMode)},
		{"container.host_network", "network", string(hc.NetworkMode)},
		{"container.host_uts", "UTS", string(hc.UTSMode)},
		{"container.host_userns", "user", string(hc.UsernsMode)},
	}
	for _, n := range ns {
		if n.mode == "host" {
			j.add(n.rule, "container shares the host "+n.name+" namespace")
		}
	}
}

func (j *judgement) capabilities(add, drop []string) {
	var dangerous, other []string
	for _, c := range effectiveAddedCaps(add, drop) {
		if dangerousCapabilities[c] {
			dangerous = append(dangerous, c)
		} else {
			other = append(other, c)
		}
	}
	if len(dangerous) > 0 {
		j.add("container.dangerous_capability", "container holds "+strings.Join(dangerous, ", "),
			"capabilities", strings.Join(dangerous, ","))
	}
	if len(other) > 0 {
		j.add("container.added_capability", "container holds capabilities beyond Docker's default set: "+strings.Join(other, ", "),
			"capabilities", strings.Join(other, ","))
	}
}

// securityOpt splits "key=value" or the legacy "key:value" form.
func securityOpt(opt string) (key, value string) {
	i := strings.IndexAny(opt, "=:")
	if i < 0 {
		return opt, ""
	}
	return opt[:i], opt[i+1:]
}

func (j *judgement) securityOpts(opts []string, appArmorProfile string, host HostFacts) {
	nnp := host.NoNewPrivileges
	nnpSource := "daemon default"
	apparmor := appArmorProfile
	for _, o := range opts {
		k, v := securityOpt(o)
		switch k {
		case "seccomp":
			if v == "unconfined" {
				j.add("container.seccomp_unconfined", "container runs without seccomp", "security_opt", o)
			}
		case "apparmor":
			apparmor = v
		case "no-new-privileges":
			// Exact key match: a bare option means true, and "=false"
			// switches it off even when the daemon default is on.
			b, err := strconv.ParseBool(orDefault(v, "true"))
			nnp, nnpSource = err == nil && b, "container option "+o
		}
	}
	if host.AppArmor && apparmor == "unconfined" {
		j.add("container.apparmor_unconfined", "container runs without an AppArmor profile")
	}
	if host.SELinux {
		if opt, ok := disablesSELinux(opts); ok {
			j.add("container.selinux_disabled", "container runs without SELinux separation ("+opt+")", "security_opt", opt)
		}
	}
	if !nnp {
		j.add("container.no_new_privileges", "no-new-privileges is not set", "set_by", nnpSource)
	}
}

// disablesSELinux finds the option that turns SELinux labelling off:
// label=disable, or the unconfined spc_t type, in either option form.
func disablesSELinux(opts []string) (string, bool) {
	for _, o := range opts {
		k, v := securityOpt(o)
		if k != "label" {
			continue
		}
		if lk, lv := securityOpt(v); v == "disable" || (lk == "type" && lv == "spc_t") {
			return o, true
		}
	}
	return "", false
}

func (j *judgement) limits(hc *container.HostConfig) {
	if hc.Memory == 0 {
		j.add("container.no_memory_limit", "container has no memory limit")
	}
	if hc.NanoCPUs == 0 && hc.CPUQuota <= 0 {
		j.add("container.no_cpu_limit", "container has no CPU limit (no --cpus or --cpu-quota)")
	}
	if hc.PidsLimit == nil || *hc.PidsLimit <= 0 {
		j.add("container.no_pids_limit", "container has no PIDs limit")
	}
}

// isRootUser reports whether a Config.User value means uid 0.
func isRootUser(u string) bool {
	user, _, _ := strings.Cut(strings.TrimSpace(u), ":")
	return user == "" || user == "0" || user == "root"
}

func (j *judgement) ports(hc *container.HostConfig) {
	var low, all []string
	keys := make([]string, 0, len(hc.PortBindings))
	byKey := make(map[string][]network.PortBinding, len(hc.PortBindings))
	for p, bindings := range hc.PortBindings {
		keys = append(keys, p.String())
		byKey[p.String()] = bindings
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, b := range byKey[k] {
			ip := "0.0.0.0"
			if b.HostIP.IsValid() {
				ip = b.HostIP.String()
			}
			desc := fmt.Sprintf("%s:%s->%s", ip, orDefault(b.HostPort, "(random)"), k)
			if hostPort := firstPort(b.HostPort); hostPort > 0 && hostPort < 1024 {
				low = append(low, desc)
			}
			if !b.HostIP.IsValid() || b.HostIP.IsUnspecified() {
				all = append(all, desc)
			}
		}
	}
	if len(low) > 0 {
		j.add("container.privileged_port", "privileged host port published: "+strings.Join(low, ", "), "ports", strings.Join(low, ","))
	}
	if len(all) > 0 {
		j.add("container.port_all_interfaces", "port published on all host interfaces: "+strings.Join(all, ", "), "ports", strings.Join(all, ","))
	}
}

// firstPort parses "80" or the start of a range "80-90"; 0 means dockerd
// picks a free (unprivileged) port.
func firstPort(hostPort string) int {
	start, _, _ := strings.Cut(hostPort, "-")
	n, err := strconv.Atoi(strings.TrimSpace(start))
	if err != nil {
		return 0
	}
	return n
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
