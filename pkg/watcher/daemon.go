package watcher

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/moby/moby/client"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
	"github.com/dockward/dockward/pkg/watcher/daemonjson"
)

// DockerAPI is the part of the Docker Engine client the watcher uses; the
// agent passes its shared *client.Client, tests a fake.
type DockerAPI interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	NetworkInspect(ctx context.Context, networkID string, options client.NetworkInspectOptions) (client.NetworkInspectResult, error)
}

const (
	defaultDaemonJSON = "/etc/docker/daemon.json"
	defaultContainerd = "/run/containerd/containerd.sock"
	bridgeICCOption   = "com.docker.network.bridge.enable_icc"
)

var daemonSubject = findings.DaemonSubject(findings.KindDaemon)

// daemonInputs is everything the daemon rules look at. Any part may be
// missing (Docker down, no daemon.json, /proc unreadable); each rule then
// falls back to the next source: /info, then the process's flags, then
// daemon.json, then dockerd's default.
type daemonInputs struct {
	info      *dockerinfo.Info
	bridgeICC *bool // the default bridge's effective enable_icc option

	proc         *hostfs.Dockerd
	flags        dockerdFlags
	tcpListeners []string

	configPath    string
	configPresent bool
	config        *daemonjson.Config // nil when absent or invalid
	configErr     error              // why dockerd would refuse daemon.json
	// configUnreadable: daemon.json exists but this process cannot read it.
	configUnreadable bool
}

// setting is one effective value and where it came from, for the finding's
// evidence.
type setting[T any] struct {
	v    T
	from string
}

func (in *daemonInputs) boolSetting(flag string, file func(*daemonjson.Config) *bool, def bool) setting[bool] {
	if v, ok := in.flags.boolean(flag); ok {
		return setting[bool]{v, "flag --" + flag}
	}
	if in.config != nil {
		if p := file(in.config); p != nil {
			return setting[bool]{*p, in.configPath}
		}
	}
	return setting[bool]{def, "dockerd default"}
}

func (in *daemonInputs) stringSetting(flag string, file func(*daemonjson.Config) *string, def string) setting[string] {
	if v, ok := in.flags.last(flag); ok {
		return setting[string]{v, "flag --" + flag}
	}
	if in.config != nil {
		if p := file(in.config); p != nil {
			return setting[string]{*p, in.configPath}
		}
	}
	return setting[string]{def, "dockerd default"}
}

func (in *daemonInputs) listSetting(flag string, file func(*daemonjson.Config) []string) setting[[]string] {
	if v := in.flags[flag]; len(v) > 0 {
		return setting[[]string]{v, "flag --" + flag}
	}
	if in.config != nil {
		if v := file(in.config); len(v) > 0 {
			return setting[[]string]{v, in.configPath}
		}
	}
	return setting[[]string]{nil, "dockerd default"}
}

// hosts are the API endpoints dockerd is configured to serve.
func (in *daemonInputs) hosts() []string {
	return in.listSetting("host", func(c *daemonjson.Config) []string { return c.Hosts }).v
}

// unixSockets are the API's Unix socket paths (host paths).
func (in *daemonInputs) unixSockets() []string {
	var out []string
	for _, h := range in.hosts() {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			if p == "" {
				p = hostfs.DockerSocket
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = append(out, hostfs.DockerSocket)
	}
	return out
}

// tcpHosts are the configured TCP endpoints. dockerd reads "host:port"
// without a scheme as TCP.
func (in *daemonInputs) tcpHosts() []string {
	var out []string
	for _, h := range in.hosts() {
		switch {
		case strings.HasPrefix(h, "tcp://"):
			out = append(out, h)
		case strings.Contains(h, "://"):
		case strings.Contains(h, ":"):
			out = append(out, "tcp://"+h)
		}
	}
	return out
}

func (in *daemonInputs) tlsVerify() setting[bool] {
	s := in.boolSetting("tlsverify", func(c *daemonjson.Config) *bool { return c.TLSVerify }, false)
	if s.from == "dockerd default" && in.proc != nil && in.proc.Env["DOCKER_TLS_VERIFY"] != "" {
		return setting[bool]{true, "environment DOCKER_TLS_VERIFY"}
	}
	return s
}

// tlsFiles are the TLS CA, certificate and key the daemon uses, when TLS is on.
func (in *daemonInputs) tlsFiles() (ca, cert, key string) {
	tls := in.boolSetting("tls", func(c *daemonjson.Config) *bool { return c.TLS }, false).v
	if !tls && !in.tlsVerify().v {
		return "", "", ""
	}
	dir := "/root/.docker"
	if in.proc != nil && in.proc.Env["DOCKER_CERT_PATH"] != "" {
		dir = in.proc.Env["DOCKER_CERT_PATH"]
	}
	get := func(flag string, f func(*daemonjson.Config) *string, file string) string {
		return in.stringSetting(flag, f, dir+"/"+file).v
	}
	return get("tlscacert", func(c *daemonjson.Config) *string { return c.TLSCACert }, "ca.pem"),
		get("tlscert", func(c *daemonjson.Config) *string { return c.TLSCert }, "cert.pem"),
		get("tlskey", func(c *daemonjson.Config) *string { return c.TLSKey }, "key.pem")
}

// judgeDaemon applies the daemon rules (CIS 2.x) to in.
func judgeDaemon(in *daemonInputs) []findings.Finding {
	var out []findings.Finding
	add := func(rule, msg, from string) *findings.Finding {
		f := findings.New(rule, daemonSubject, msg).With("setting_source", from)
		out = append(out, f)
		return &out[len(out)-1]
	}
	judgeConfigFile(in, &out)

	// 2.2: the bridge network's own option is the effective value.
	if in.bridgeICC != nil {
		if *in.bridgeICC {
			add("daemon.icc_enabled", "inter-container communication is enabled on the default bridge", "network inspect bridge")
		}
	} else if s := in.boolSetting("icc", func(c *daemonjson.Config) *bool { return c.ICC }, true); s.v {
		add("daemon.icc_enabled", "inter-container communication is enabled on the default bridge", s.from)
	}

	// 2.3
	level := in.stringSetting("log-level", func(c *daemonjson.Config) *string { return c.LogLevel }, "info")
	if dbg := in.boolSetting("debug", func(c *daemonjson.Config) *bool { return c.Debug }, false); dbg.v || (in.info != nil && in.info.Debug) {
		level = setting[string]{"debug", "debug mode"}
		if in.info != nil && in.info.Debug {
			level.from = "GET /info (Debug)"
		}
	}
	if !strings.EqualFold(level.v, "info") {
		add("daemon.log_level", fmt.Sprintf("the daemon log level is %q, not \"info\"", level.v), level.from)
	}

	// 2.4
	if s := in.boolSetting("iptables", func(c *daemonjson.Config) *bool { return c.IPTables }, true); !s.v {
		add("daemon.iptables_disabled", "Docker is not allowed to manage iptables rules", s.from)
	}

	// 2.5
	if insecure, from := insecureRegistries(in); len(insecure) > 0 {
		f := add("daemon.insecure_registry", "insecure registries are configured: "+strings.Join(insecure, ", "), from)
		*f = f.With("registries", strings.Join(insecure, ","))
	}

	// 2.6
	driver := in.stringSetting("storage-driver", func(c *daemonjson.Config) *string { return c.StorageDriver }, "")
	if in.info != nil {
		driver = setting[string]{in.info.Driver, "GET /info (Driver)"}
	}
	if driver.v == "aufs" {
		add("daemon.aufs_driver", "the aufs storage driver is in use", driver.from)
	}

	// 2.7
	judgeTCP(in, add)

	// 2.8
	if ul := in.listSetting("default-ulimit", func(c *daemonjson.Config) []string { return ulimitNames(c) }); len(ul.v) == 0 {
		add("daemon.no_default_ulimits", "no default ulimits are set for containers", ul.from)
	}

	// 2.9
	if in.info != nil {
		if _, ok := in.info.SecurityOption("userns"); !ok {
			add("daemon.no_userns_remap", "user namespace remapping is off", "GET /info (SecurityOptions)")
		}
	} else if s := in.stringSetting("userns-remap", func(c *daemonjson.Config) *string { return c.UsernsRemap }, ""); s.v == "" {
		add("daemon.no_userns_remap", "user namespace remapping is off", s.from)
	}

	// 2.12
	if in.info != nil {
		if len(in.info.Plugins.Authorization) == 0 {
			add("daemon.no_authz_plugin", "no authorization plugin is loaded", "GET /info (Plugins.Authorization)")
		}
	} else if s := in.listSetting("authorization-plugin", func(c *daemonjson.Config) []string { return c.AuthorizationPlugins }); len(s.v) == 0 {
		add("daemon.no_authz_plugin", "no authorization plugin is configured", s.from)
	}

	// 2.13
	logDriver := in.stringSetting("log-driver", func(c *daemonjson.Config) *string { return c.LogDriver }, "json-file")
	if in.info != nil {
		logDriver = setting[string]{in.info.LoggingDriver, "GET /info (LoggingDriver)"}
	}
	if isLocalLogDriver(logDriver.v) {
		f := add("daemon.local_log_driver", fmt.Sprintf("the default log driver %q keeps container logs on this host only", logDriver.v), logDriver.from)
		*f = f.With("log_driver", logDriver.v)
	}

	// 2.14: newer daemons list name=no-new-privileges in /info; older ones
	// do not report it at all, so its absence falls back to the settings.
	nnp := in.boolSetting("no-new-privileges", func(c *daemonjson.Config) *bool { return c.NoNewPrivileges }, false)
	if in.info != nil {
		if _, ok := in.info.SecurityOption("no-new-privileges"); ok {
			nnp = setting[bool]{true, "GET /info (SecurityOptions)"}
		}
	}
	if !nnp.v {
		add("daemon.no_new_privileges_default", "containers may gain new privileges unless each one opts out", nnp.from)
	}

	// 2.15
	live := in.boolSetting("live-restore", func(c *daemonjson.Config) *bool { return c.LiveRestore }, false)
	if in.info != nil {
		live = setting[bool]{in.info.LiveRestoreEnabled, "GET /info (LiveRestoreEnabled)"}
	}
	if !live.v {
		add("daemon.live_restore_off", "live restore is off: restarting dockerd stops every container", live.from)
	}

	// 2.16
	if s := in.boolSetting("userland-proxy", func(c *daemonjson.Config) *bool { return c.UserlandProxy }, true); s.v {
		add("daemon.userland_proxy", "the userland proxy (docker-proxy) is on", s.from)
	}

	// 2.17
	judgeSeccomp(in, add)

	// 2.18
	exp := in.boolSetting("experimental", func(c *daemonjson.Config) *bool { return c.Experimental }, false)
	if in.info != nil {
		exp = setting[bool]{in.info.ExperimentalBuild, "GET /info (ExperimentalBuild)"}
	}
	if exp.v {
		add("daemon.experimental", "experimental features are enabled", exp.from)
	}
	return out
}

// judgeConfigFile reports a daemon.json dockerd would refuse: unparseable,
// or naming a directive also given as a flag.
func judgeConfigFile(in *daemonInputs, out *[]findings.Finding) {
	if in.configErr != nil {
		f := findings.New("daemon.config_invalid", daemonSubject,
			fmt.Sprintf("%s is invalid: %v", in.configPath, in.configErr)).
			With("path", in.configPath).With("error", in.configErr.Error())
		var pe *daemonjson.Error
		if errors.As(in.configErr, &pe) && pe.Line > 0 {
			f = f.With("line", fmt.Sprint(pe.Line)).With("column", fmt.Sprint(pe.Column))
			f.Remediation = fmt.Sprintf("Fix %s at line %d, column %d (%s); check the whole file with: python3 -m json.tool %s",
				in.configPath, pe.Line, pe.Column, pe.Msg, in.configPath)
		} else {
			f.Remediation = fmt.Sprintf("Make %s a readable JSON object of dockerd options; check it with: python3 -m json.tool %s",
				in.configPath, in.configPath)
		}
		*out = append(*out, f)
		return
	}
	if in.config == nil || len(in.flags) == 0 {
		return
	}
	byKey := in.flags.configKeys()
	var both []string
	for _, k := range in.config.Keys {
		if flag, ok := byKey[k]; ok {
			both = append(both, fmt.Sprintf("%s (%s)", k, flag))
		}
	}
	if len(both) > 0 {
		f := findings.New("daemon.config_invalid", daemonSubject,
			fmt.Sprintf("%s sets directives also given as dockerd flags; dockerd will refuse to start: %s", in.configPath, strings.Join(both, ", "))).
			With("path", in.configPath).With("conflicts", strings.Join(both, ","))
		f.Remediation = fmt.Sprintf("Remove each of %s either from %s or from dockerd's command line (docker.service, /etc/default/docker).",
			strings.Join(both, ", "), in.configPath)
		*out = append(*out, f)
	}
}

func insecureRegistries(in *daemonInputs) ([]string, string) {
	if in.info == nil || in.info.RegistryConfig == nil {
		s := in.listSetting("insecure-registry", func(c *daemonjson.Config) []string { return c.InsecureRegistries })
		return s.v, s.from
	}
	var out []string
	for name, idx := range in.info.RegistryConfig.IndexConfigs {
		if idx != nil && !idx.Secure {
			out = append(out, name)
		}
	}
	loopback4 := netip.MustParsePrefix("127.0.0.0/8")
	loopback6 := netip.MustParsePrefix("::1/128")
	for _, cidr := range in.info.RegistryConfig.InsecureRegistryCIDRs {
		if cidr == loopback4 || cidr == loopback6 { // dockerd's built-in default
			continue
		}
		out = append(out, cidr.String())
	}
	sort.Strings(out)
	return out, "GET /info (RegistryConfig)"
}

func judgeTCP(in *daemonInputs, add func(rule, msg, from string) *findings.Finding) {
	endpoints := in.tcpHosts()
	from := "configured hosts"
	for _, l := range in.tcpListeners {
		endpoints = append(endpoints, "listening "+l)
		from = fmt.Sprintf("dockerd (pid %d) sockets", in.proc.PID)
	}
	if len(endpoints) == 0 {
		return
	}
	verify := in.tlsVerify()
	if verify.v {
		return
	}
	f := add("daemon.tcp_without_tls", "the Docker API is served on TCP without TLS client verification: "+strings.Join(endpoints, ", "), from)
	*f = f.With("endpoints", strings.Join(endpoints, ",")).With("tlsverify_source", verify.from)
}

func judgeSeccomp(in *daemonInputs, add func(rule, msg, from string) *findings.Finding) {
	if in.info != nil {
		opt, ok := in.info.SecurityOption("seccomp")
		switch {
		case !ok:
			add("daemon.seccomp_profile", "seccomp is not in use by the daemon", "GET /info (SecurityOptions)")
		case opt["profile"] != "default" && opt["profile"] != "builtin":
			f := add("daemon.seccomp_profile", fmt.Sprintf("the daemon's default seccomp profile is %q", opt["profile"]), "GET /info (SecurityOptions)")
			*f = f.With("profile", opt["profile"])
		}
		return
	}
	s := in.stringSetting("seccomp-profile", func(c *daemonjson.Config) *string { return c.SeccompProfile }, "")
	if s.v != "" && s.v != "builtin" {
		f := add("daemon.seccomp_profile", fmt.Sprintf("the daemon's default seccomp profile is %q", s.v), s.from)
		*f = f.With("profile", s.v)
	}
}

func ulimitNames(c *daemonjson.Config) []string {
	var out []string
	for name := range c.DefaultUlimits {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// isLocalLogDriver: these drivers leave logs on the host (or nowhere).
// journald and syslog are host services commonly shipped off the host.
func isLocalLogDriver(d string) bool {
	switch d {
	case "", "json-file", "local", "none":
		return true
	}
	return false
}
