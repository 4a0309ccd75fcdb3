package watcher

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/watcher/daemonjson"
)

// daemonRule is one daemon.* rule (CIS 2.x): judge reads the setting the
// rule is about from the daemon's inputs and reports the rule's findings.
type daemonRule struct {
	id    string
	judge func(in *daemonInputs) []findings.Finding
}

// daemonRules are the daemon rules in CIS order. Most judge one setting,
// read from GET /info when the daemon answered (what it really runs with),
// else from its flags, then daemon.json, then dockerd's default.
var daemonRules = []daemonRule{
	{id: "daemon.config_invalid", judge: judgeConfigFile},
	boolRule("daemon.icc_enabled", (*daemonInputs).icc, true, "inter-container communication is enabled on the default bridge"), // 2.2
	settingRule("daemon.log_level", (*daemonInputs).logLevel, func(s setting[string]) (violation, bool) { // 2.3
		return violation{msg: fmt.Sprintf("the daemon log level is %q, not \"info\"", s.v)}, !strings.EqualFold(s.v, "info")
	}),
	boolRule("daemon.iptables_disabled", fileBool("iptables", func(c *daemonjson.Config) *bool { return c.IPTables }, true), false, // 2.4
		"Docker is not allowed to manage iptables rules"),
	settingRule("daemon.insecure_registry", (*daemonInputs).insecureRegistries, func(s setting[[]string]) (violation, bool) { // 2.5
		list := strings.Join(s.v, ", ")
		return violation{msg: "insecure registries are configured: " + list, details: []string{"registries", strings.Join(s.v, ",")}}, len(s.v) > 0
	}),
	settingRule("daemon.aufs_driver", orInfo(func(i *dockerinfo.Info) setting[string] { return setting[string]{i.Driver, "GET /info (Driver)"} }, // 2.6
		fileString("storage-driver", func(c *daemonjson.Config) *string { return c.StorageDriver }, "")),
		func(s setting[string]) (violation, bool) {
			return violation{msg: "the aufs storage driver is in use"}, s.v == "aufs"
		}),
	settingRule("daemon.tcp_without_tls", (*daemonInputs).tcpExposure, func(s setting[tcpExposure]) (violation, bool) { // 2.7
		return violation{msg: "the Docker API is served on TCP without TLS client verification: " + strings.Join(s.v.endpoints, ", "),
			details: []string{"endpoints", strings.Join(s.v.endpoints, ","), "tlsverify_source", s.v.verify.from}}, len(s.v.endpoints) > 0 && !s.v.verify.v
	}),
	settingRule("daemon.no_default_ulimits", fileList("default-ulimit", ulimitNames), func(s setting[[]string]) (violation, bool) { // 2.8
		return violation{msg: "no default ulimits are set for containers"}, len(s.v) == 0
	}),
	boolRule("daemon.no_userns_remap", orInfo(infoHasOption("userns"), func(in *daemonInputs) setting[bool] { // 2.9
		s := in.stringSetting("userns-remap", func(c *daemonjson.Config) *string { return c.UsernsRemap }, "")
		return setting[bool]{s.v != "", s.from}
	}), false, "user namespace remapping is off"),
	settingRule("daemon.no_authz_plugin", orInfo(func(i *dockerinfo.Info) setting[[]string] { // 2.12
		return setting[[]string]{i.Plugins.Authorization, fromInfo + " (Plugins.Authorization)"}
	}, fileList("authorization-plugin", func(c *daemonjson.Config) []string { return c.AuthorizationPlugins })),
		func(s setting[[]string]) (violation, bool) {
			if strings.HasPrefix(s.from, fromInfo) {
				return violation{msg: "no authorization plugin is loaded"}, len(s.v) == 0
			}
			return violation{msg: "no authorization plugin is configured"}, len(s.v) == 0
		}),
	settingRule("daemon.local_log_driver", orInfo(func(i *dockerinfo.Info) setting[string] { // 2.13
		return setting[string]{i.LoggingDriver, "GET /info (LoggingDriver)"}
	}, fileString("log-driver", func(c *daemonjson.Config) *string { return c.LogDriver }, "json-file")),
		func(s setting[string]) (violation, bool) {
			return violation{msg: fmt.Sprintf("the default log driver %q keeps container logs on this host only", s.v),
				details: []string{"log_driver", s.v}}, isLocalLogDriver(s.v)
		}),
	boolRule("daemon.no_new_privileges_default", (*daemonInputs).noNewPrivileges, false, // 2.14
		"containers may gain new privileges unless each one opts out"),
	boolRule("daemon.live_restore_off", orInfo(func(i *dockerinfo.Info) setting[bool] { // 2.15
		return setting[bool]{i.LiveRestoreEnabled, "GET /info (LiveRestoreEnabled)"}
	}, fileBool("live-restore", func(c *daemonjson.Config) *bool { return c.LiveRestore }, false)),
		false, "live restore is off: restarting dockerd stops every container"),
	boolRule("daemon.userland_proxy", fileBool("userland-proxy", func(c *daemonjson.Config) *bool { return c.UserlandProxy }, true), // 2.16
		true, "the userland proxy (docker-proxy) is on"),
	settingRule("daemon.seccomp_profile", orInfo(infoSeccomp, fileSeccomp), func(s setting[seccomp]) (violation, bool) { // 2.17
		if !s.v.inUse {
			return violation{msg: "seccomp is not in use by the daemon"}, true
		}
		return violation{msg: fmt.Sprintf("the daemon's default seccomp profile is %q", s.v.profile),
			details: []string{"profile", s.v.profile}}, !s.v.standard
	}),
	boolRule("daemon.experimental", orInfo(func(i *dockerinfo.Info) setting[bool] { // 2.18
		return setting[bool]{i.ExperimentalBuild, "GET /info (ExperimentalBuild)"}
	}, fileBool("experimental", func(c *daemonjson.Config) *bool { return c.Experimental }, false)),
		true, "experimental features are enabled"),
}

// judgeDaemon applies the daemon rules (CIS 2.x) to in.
func judgeDaemon(in *daemonInputs) []findings.Finding {
	var out []findings.Finding
	for _, r := range daemonRules {
		out = append(out, r.judge(in)...)
	}
	return out
}

// violation is how a setting breaks its rule: the finding's message and
// its evidence besides setting_source, as key, value pairs.
type violation struct {
	msg     string
	details []string
}

// settingRule is a rule on one setting: read gives the effective value and
// where it came from, broken whether that value breaks the rule, and how.
func settingRule[T any](id string, read func(*daemonInputs) setting[T], broken func(setting[T]) (violation, bool)) daemonRule {
	return daemonRule{id: id, judge: func(in *daemonInputs) []findings.Finding {
		s := read(in)
		v, bad := broken(s)
		if !bad {
			return nil
		}
		f := findings.New(id, daemonSubject, v.msg).With("setting_source", s.from)
		for i := 0; i+1 < len(v.details); i += 2 {
			f = f.With(v.details[i], v.details[i+1])
		}
		return []findings.Finding{f}
	}}
}

// boolRule is a rule broken when a boolean setting is bad.
func boolRule(id string, read func(*daemonInputs) setting[bool], bad bool, msg string) daemonRule {
	return settingRule(id, read, func(s setting[bool]) (violation, bool) { return violation{msg: msg}, s.v == bad })
}

// fromInfo starts the origin of every setting read from GET /info.
const fromInfo = "GET /info"

// orInfo reads a setting from GET /info when the daemon answered it, and
// from the flags and daemon.json otherwise.
func orInfo[T any](info func(*dockerinfo.Info) setting[T], settings func(*daemonInputs) setting[T]) func(*daemonInputs) setting[T] {
	return func(in *daemonInputs) setting[T] {
		if in.info != nil {
			return info(in.info)
		}
		return settings(in)
	}
}

// fileBool, fileString and fileList read a setting from the flag, then the
// daemon.json field, then dockerd's default.
func fileBool(flag string, field func(*daemonjson.Config) *bool, def bool) func(*daemonInputs) setting[bool] {
	return func(in *daemonInputs) setting[bool] { return in.boolSetting(flag, field, def) }
}

func fileString(flag string, field func(*daemonjson.Config) *string, def string) func(*daemonInputs) setting[string] {
	return func(in *daemonInputs) setting[string] { return in.stringSetting(flag, field, def) }
}

func fileList(flag string, field func(*daemonjson.Config) []string) func(*daemonInputs) setting[[]string] {
	return func(in *daemonInputs) setting[[]string] { return in.listSetting(flag, field) }
}

// infoHasOption reads whether GET /info lists the security option name.
func infoHasOption(name string) func(*dockerinfo.Info) setting[bool] {
	return func(i *dockerinfo.Info) setting[bool] {
		_, ok := i.SecurityOption(name)
		return setting[bool]{ok, "GET /info (SecurityOptions)"}
	}
}

// icc is 2.2's setting: the default bridge's own option is the effective
// value; without it, the daemon's icc setting.
func (in *daemonInputs) icc() setting[bool] {
	if in.bridgeICC != nil {
		return setting[bool]{*in.bridgeICC, "network inspect bridge"}
	}
	return in.boolSetting("icc", func(c *daemonjson.Config) *bool { return c.ICC }, true)
}

// logLevel is 2.3's setting; debug mode, by flag, file or /info, is "debug".
func (in *daemonInputs) logLevel() setting[string] {
	level := in.stringSetting("log-level", func(c *daemonjson.Config) *string { return c.LogLevel }, "info")
	infoDebug := in.info != nil && in.info.Debug
	if dbg := in.boolSetting("debug", func(c *daemonjson.Config) *bool { return c.Debug }, false); dbg.v || infoDebug {
		level = setting[string]{"debug", "debug mode"}
		if infoDebug {
			level.from = "GET /info (Debug)"
		}
	}
	return level
}

// noNewPrivileges is 2.14's setting. Newer daemons list
// name=no-new-privileges in /info; older ones do not report it at all, so
// its absence falls back to the settings.
func (in *daemonInputs) noNewPrivileges() setting[bool] {
	if in.info != nil {
		if s := infoHasOption("no-new-privileges")(in.info); s.v {
			return s
		}
	}
	return in.boolSetting("no-new-privileges", func(c *daemonjson.Config) *bool { return c.NoNewPrivileges }, false)
}

// insecureRegistries is 2.5's setting: the registries the daemon reaches
// without TLS verification, dockerd's built-in loopback ranges left out.
func (in *daemonInputs) insecureRegistries() setting[[]string] {
	if in.info == nil || in.info.RegistryConfig == nil {
		return in.listSetting("insecure-registry", func(c *daemonjson.Config) []string { return c.InsecureRegistries })
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
	return setting[[]string]{out, "GET /info (RegistryConfig)"}
}

// tcpExposure is 2.7's setting: the API's TCP endpoints, configured or
// listening, and whether TLS client verification guards them.
type tcpExposure struct {
	endpoints []string
	verify    setting[bool]
}

func (in *daemonInputs) tcpExposure() setting[tcpExposure] {
	endpoints := in.tcpHosts()
	from := "configured hosts"
	for _, l := range in.tcpListeners {
		endpoints = append(endpoints, "listening "+l)
		from = fmt.Sprintf("dockerd (pid %d) sockets", in.proc.PID)
	}
	return setting[tcpExposure]{tcpExposure{endpoints, in.tlsVerify()}, from}
}

// seccomp is 2.17's setting: whether the daemon applies seccomp, its
// default profile, and whether that is Docker's own.
type seccomp struct {
	inUse, standard bool
	profile         string
}

func infoSeccomp(i *dockerinfo.Info) setting[seccomp] {
	opt, ok := i.SecurityOption("seccomp")
	p := opt["profile"]
	return setting[seccomp]{seccomp{inUse: ok, profile: p, standard: p == "default" || p == "builtin"}, "GET /info (SecurityOptions)"}
}

// fileSeccomp: an unset seccomp-profile, or "builtin", is Docker's own.
func fileSeccomp(in *daemonInputs) setting[seccomp] {
	s := in.stringSetting("seccomp-profile", func(c *daemonjson.Config) *string { return c.SeccompProfile }, "")
	return setting[seccomp]{seccomp{inUse: true, profile: s.v, standard: s.v == "" || s.v == "builtin"}, s.from}
}

// judgeConfigFile reports a daemon.json dockerd would refuse: unparseable,
// or naming a directive also given as a flag.
func judgeConfigFile(in *daemonInputs) []findings.Finding {
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
		return []findings.Finding{f}
	}
	if in.config == nil || len(in.flags) == 0 {
		return nil
	}
	byKey := in.flags.configKeys()
	var both []string
	for _, k := range in.config.Keys {
		if flag, ok := byKey[k]; ok {
			both = append(both, fmt.Sprintf("%s (%s)", k, flag))
		}
	}
	if len(both) == 0 {
		return nil
	}
	f := findings.New("daemon.config_invalid", daemonSubject,
		fmt.Sprintf("%s sets directives also given as dockerd flags; dockerd will refuse to start: %s", in.configPath, strings.Join(both, ", "))).
		With("path", in.configPath).With("conflicts", strings.Join(both, ","))
	f.Remediation = fmt.Sprintf("Remove each of %s either from %s or from dockerd's command line (docker.service, /etc/default/docker).",
		strings.Join(both, ", "), in.configPath)
	return []findings.Finding{f}
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
