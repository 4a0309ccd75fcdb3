// Package podrun translates a rendered pod spec into `docker run`
// arguments with the same security context, capabilities, host namespaces
// and mounts, so that the chart's DaemonSet pod can run on a plain Docker
// Engine the way a kubelet with cri-dockerd would run it. Every field it
// does not translate is an error that names it: a chart change that adds
// one cannot pass the end-to-end test untranslated.
package podrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Options are what the translation needs besides the pod spec.
type Options struct {
	// Name is the container's name.
	Name string
	// WorkDir receives the files of ConfigMap volumes.
	WorkDir string
	// ConfigMaps are the rendered ConfigMaps that volumes may refer to.
	ConfigMaps []corev1.ConfigMap
	// NoMountPropagation leaves out a mount's propagation (HostToContainer
	// is rslave, Bidirectional rshared), which Docker refuses where the
	// host's / is not a shared mount; each one left out is in Dropped.
	NoMountPropagation bool
}

// Run is the translation of one pod.
type Run struct {
	// Args are the arguments of `docker run`, the image and its arguments
	// last.
	Args []string
	// Image is the container's image.
	Image string
	// Readiness and Liveness are the container's probes, which the caller
	// runs, since docker has no HTTP probe.
	Readiness, Liveness *corev1.Probe
	// Dropped lists what was deliberately not reproduced, and why.
	Dropped []string
}

// DockerRun translates pod, which must have exactly one container.
func DockerRun(pod corev1.PodSpec, o Options) (Run, error) {
	rest := pod.DeepCopy()
	var r Run
	var errs []error
	add := func(args ...string) { r.Args = append(r.Args, args...) }
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	add("-d", "--name", o.Name)
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 || len(pod.EphemeralContainers) != 0 {
		return Run{}, fmt.Errorf("pod has %d containers and %d init containers; the translation runs exactly one container",
			len(pod.Containers), len(pod.InitContainers))
	}
	translateNamespaces(rest, add, fail)
	translateScheduling(rest, &r)
	if rest.TerminationGracePeriodSeconds != nil {
		add("--stop-timeout", strconv.FormatInt(*rest.TerminationGracePeriodSeconds, 10))
		rest.TerminationGracePeriodSeconds = nil
	}
	podSC := rest.SecurityContext
	rest.SecurityContext = nil
	volumes := map[string]corev1.Volume{}
	for _, v := range rest.Volumes {
		volumes[v.Name] = v
	}
	rest.Volumes = nil

	c := rest.Containers[0]
	rest.Containers = nil
	translateIdentity(podSC, c.SecurityContext, add, fail)
	used := map[string]bool{}
	for _, m := range c.VolumeMounts {
		used[m.Name] = true
		args, dropped, err := mountArgs(m, volumes, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		add(args...)
		r.Dropped = append(r.Dropped, dropped...)
	}
	c.VolumeMounts = nil
	for name := range volumes {
		if !used[name] {
			fail("volume %s is not mounted by the container", name)
		}
	}
	r.Image = c.Image
	name := c.Name
	imageArgs, err := translateContainer(&c, &r, rest.HostNetwork)
	errs = append(errs, err)
	rest.HostNetwork = false
	r.Args = append(r.Args, imageArgs...)
	errs = append(errs, leftover("pod spec", rest), leftover("container "+name, &c))
	return r, errors.Join(errs...)
}

// translateNamespaces maps the host namespaces and the DNS policy.
func translateNamespaces(p *corev1.PodSpec, add func(...string), fail func(string, ...any)) {
	if p.HostPID {
		add("--pid", "host")
	}
	if p.HostIPC {
		add("--ipc", "host")
	}
	p.HostPID, p.HostIPC = false, false
	if !p.HostNetwork {
		fail("hostNetwork false: pod networking has no docker run equivalent here")
	} else {
		add("--network", "host")
	}
	if p.HostUsers == nil || *p.HostUsers {
		add("--userns", "host")
	} else {
		fail("hostUsers false: a user-namespaced pod has no docker run equivalent")
	}
	p.HostUsers = nil
	switch p.DNSPolicy {
	case corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, "":
		// With the host network, docker uses the host's resolv.conf.
	default:
		fail("dnsPolicy %s needs cluster DNS", p.DNSPolicy)
	}
	p.DNSPolicy = ""
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		fail("automountServiceAccountToken is not false: there is no API server token to mount")
	}
	p.AutomountServiceAccountToken = nil
	p.ServiceAccountName = ""
}

// translateScheduling consumes what only places the pod on a node.
func translateScheduling(p *corev1.PodSpec, r *Run) {
	if len(p.NodeSelector) > 0 {
		r.Dropped = append(r.Dropped, fmt.Sprintf("nodeSelector %v: placement only", p.NodeSelector))
	}
	if len(p.Tolerations) > 0 {
		r.Dropped = append(r.Dropped, "tolerations: placement only")
	}
	p.NodeSelector, p.Tolerations, p.Affinity, p.PriorityClassName, p.ImagePullSecrets = nil, nil, nil, "", nil
}

// translateIdentity maps the user, group and seccomp of the pod's and the
// container's security contexts (the container's wins, as in Kubernetes).
func translateIdentity(pod *corev1.PodSecurityContext, c *corev1.SecurityContext, add func(...string), fail func(string, ...any)) {
	var user, group *int64
	var nonRoot *bool
	var seccomp *corev1.SeccompProfile
	if pod != nil {
		user, group, nonRoot, seccomp = pod.RunAsUser, pod.RunAsGroup, pod.RunAsNonRoot, pod.SeccompProfile
		rest := pod.DeepCopy()
		rest.RunAsUser, rest.RunAsGroup, rest.RunAsNonRoot, rest.SeccompProfile = nil, nil, nil, nil
		if err := leftover("pod securityContext", rest); err != nil {
			fail("%v", err)
		}
	}
	if c != nil {
		user, group = orInt(c.RunAsUser, user), orInt(c.RunAsGroup, group)
		if c.RunAsNonRoot != nil {
			nonRoot = c.RunAsNonRoot
		}
		if c.SeccompProfile != nil {
			seccomp = c.SeccompProfile
		}
	}
	if user != nil {
		u := strconv.FormatInt(*user, 10)
		if group != nil {
			u += ":" + strconv.FormatInt(*group, 10)
		}
		add("--user", u)
	}
	if nonRoot != nil && *nonRoot && (user == nil || *user == 0) {
		fail("runAsNonRoot with user %v: the kubelet would refuse to start the container", user)
	}
	if seccomp != nil {
		switch seccomp.Type {
		case corev1.SeccompProfileTypeRuntimeDefault: // docker's default profile
		case corev1.SeccompProfileTypeUnconfined:
			add("--security-opt", "seccomp=unconfined")
		default:
			fail("seccompProfile %s has no translation", seccomp.Type)
		}
	}
}

func orInt(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

// translateContainer maps the container's own settings and returns the
// image and its arguments, which come last.
func translateContainer(c *corev1.Container, r *Run, hostNetwork bool) ([]string, error) {
	var errs []error
	switch c.ImagePullPolicy {
	case corev1.PullIfNotPresent, "":
		r.Args = append(r.Args, "--pull", "missing")
	case corev1.PullNever:
		r.Args = append(r.Args, "--pull", "never")
	case corev1.PullAlways:
		r.Args = append(r.Args, "--pull", "always")
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			errs = append(errs, fmt.Errorf("env %s: valueFrom has no translation", e.Name))
			continue
		}
		r.Args = append(r.Args, "-e", e.Name+"="+e.Value)
	}
	if !hostNetwork && len(c.Ports) > 0 {
		errs = append(errs, errors.New("ports without hostNetwork have no translation"))
	}
	if sc := c.SecurityContext; sc != nil {
		errs = append(errs, securityArgs(sc, r))
	}
	if lim := c.Resources.Limits; lim != nil {
		if m, ok := lim[corev1.ResourceMemory]; ok {
			r.Args = append(r.Args, "--memory", strconv.FormatInt(m.Value(), 10))
		}
		if cpu, ok := lim[corev1.ResourceCPU]; ok {
			r.Args = append(r.Args, "--cpus", strconv.FormatFloat(float64(cpu.MilliValue())/1000, 'f', 3, 64))
		}
	}
	if c.WorkingDir != "" {
		r.Args = append(r.Args, "--workdir", c.WorkingDir)
	}
	switch len(c.Command) {
	case 0:
	case 1:
		r.Args = append(r.Args, "--entrypoint", c.Command[0])
	default:
		errs = append(errs, fmt.Errorf("command %v: docker's --entrypoint takes one word", c.Command))
	}
	out := append([]string{c.Image}, c.Args...)
	r.Readiness, r.Liveness = c.ReadinessProbe, c.LivenessProbe
	c.Name, c.Image, c.ImagePullPolicy, c.Env, c.Ports, c.SecurityContext, c.Command, c.Args = "", "", "", nil, nil, nil, nil, nil
	c.ReadinessProbe, c.LivenessProbe, c.Resources, c.WorkingDir = nil, nil, corev1.ResourceRequirements{}, ""
	return out, errors.Join(errs...)
}

// securityArgs maps the container's privileges and capabilities.
func securityArgs(sc *corev1.SecurityContext, r *Run) error {
	if sc.Privileged != nil && *sc.Privileged {
		r.Args = append(r.Args, "--privileged")
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		r.Args = append(r.Args, "--security-opt", "no-new-privileges")
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		r.Args = append(r.Args, "--read-only")
	}
	if caps := sc.Capabilities; caps != nil {
		for _, cp := range caps.Drop {
			r.Args = append(r.Args, "--cap-drop", string(cp))
		}
		for _, cp := range caps.Add {
			r.Args = append(r.Args, "--cap-add", string(cp))
		}
	}
	rest := sc.DeepCopy()
	rest.Privileged, rest.AllowPrivilegeEscalation, rest.ReadOnlyRootFilesystem, rest.Capabilities = nil, nil, nil, nil
	rest.RunAsUser, rest.RunAsGroup, rest.RunAsNonRoot, rest.SeccompProfile = nil, nil, nil, nil
	return leftover("container securityContext", rest)
}

// mountArgs maps one volume mount to a -v argument.
func mountArgs(m corev1.VolumeMount, volumes map[string]corev1.Volume, o Options) ([]string, []string, error) {
	v, ok := volumes[m.Name]
	if !ok {
		return nil, nil, fmt.Errorf("volume mount %s: no such volume", m.Name)
	}
	var source string
	switch {
	case v.HostPath != nil:
		p, err := hostPathSource(v.HostPath)
		if err != nil {
			return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		source = p
	case v.ConfigMap != nil:
		dir, err := writeConfigMap(v, o)
		if err != nil {
			return nil, nil, err
		}
		source = dir
		m.ReadOnly = true // the kubelet mounts ConfigMaps read-only
	default:
		return nil, nil, fmt.Errorf("volume %s: only hostPath and configMap volumes have a translation", v.Name)
	}
	if m.SubPath != "" {
		source = filepath.Join(source, m.SubPath)
	}
	var opts []string
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	var dropped []string
	prop := ""
	if m.MountPropagation != nil {
		switch *m.MountPropagation {
		case corev1.MountPropagationHostToContainer:
			prop = "rslave"
		case corev1.MountPropagationBidirectional:
			prop = "rshared"
		}
	}
	if prop != "" && o.NoMountPropagation {
		dropped = append(dropped, fmt.Sprintf("mountPropagation %s (%s) of %s: the host's / is not a shared mount, and Docker refuses it there",
			*m.MountPropagation, prop, m.MountPath))
	} else if prop != "" {
		opts = append(opts, prop)
	}
	arg := source + ":" + m.MountPath
	if len(opts) > 0 {
		arg += ":" + strings.Join(opts, ",")
	}
	return []string{"-v", arg}, dropped, nil
}

// hostPathSource checks a hostPath volume's type as the kubelet does.
func hostPathSource(h *corev1.HostPathVolumeSource) (string, error) {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	st, err := os.Stat(h.Path)
	switch t {
	case corev1.HostPathUnset:
		return h.Path, nil
	case corev1.HostPathDirectoryOrCreate:
		if err != nil {
			return h.Path, os.MkdirAll(h.Path, 0o755)
		}
		err = wantMode(st, h.Path, os.ModeDir)
	case corev1.HostPathDirectory:
		if err == nil {
			err = wantMode(st, h.Path, os.ModeDir)
		}
	case corev1.HostPathSocket:
		if err == nil {
			err = wantMode(st, h.Path, os.ModeSocket)
		}
	default:
		err = fmt.Errorf("hostPath type %s has no translation", t)
	}
	return h.Path, err
}

func wantMode(st os.FileInfo, path string, mode os.FileMode) error {
	if st.Mode()&mode == 0 {
		return fmt.Errorf("%s is not a %v (mode %v)", path, mode, st.Mode())
	}
	return nil
}

// writeConfigMap writes the ConfigMap of a volume to WorkDir/<volume>/.
func writeConfigMap(v corev1.Volume, o Options) (string, error) {
	for _, cm := range o.ConfigMaps {
		if cm.Name != v.ConfigMap.Name {
			continue
		}
		dir := filepath.Join(o.WorkDir, v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		for key, data := range cm.Data {
			if err := os.WriteFile(filepath.Join(dir, key), []byte(data), 0o644); err != nil {
				return "", err
			}
		}
		return dir, nil
	}
	return "", fmt.Errorf("volume %s: ConfigMap %s was not rendered", v.Name, v.ConfigMap.Name)
}

// leftover fails when obj still has a field set: one the translation did
// not consume.
func leftover(what string, obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	var names []string
	for k, v := range fields {
		switch v := v.(type) {
		case nil:
			continue
		case map[string]any:
			if len(v) == 0 {
				continue
			}
		case []any:
			if len(v) == 0 {
				continue
			}
		case string:
			if v == "" {
				continue
			}
		case bool:
			if !v {
				continue
			}
		}
		names = append(names, k)
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return fmt.Errorf("%s: fields with no docker run translation: %s", what, strings.Join(names, ", "))
}
