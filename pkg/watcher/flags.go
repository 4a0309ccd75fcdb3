package watcher

import (
	"strings"
)

// dockerdFlags are the daemon's command-line flags, by long name, in order.
type dockerdFlags map[string][]string

// shortFlags maps dockerd's one-letter flags to their long names.
var shortFlags = map[string]string{
	"H": "host", "l": "log-level", "D": "debug", "s": "storage-driver", "p": "pidfile",
	"g": "graph", "G": "group", "b": "bridge", "v": "version", "h": "help",
}

// boolFlags take no separate value ("--icc=false" is the only way to turn
// them off), so "--tlsverify tcp://..." must not eat the next argument.
var boolFlags = map[string]bool{
	"debug": true, "experimental": true, "help": true, "icc": true, "init": true, "ip-forward": true,
	"ip-masq": true, "ip6tables": true, "iptables": true, "ipv6": true, "live-restore": true,
	"no-new-privileges": true, "raw-logs": true, "rootless": true, "selinux-enabled": true,
	"tls": true, "tlsverify": true, "userland-proxy": true, "validate": true, "version": true,
	"ip-forward-no-drop": true, "allow-direct-routing": true,
}

// configKeyOf maps a flag to its daemon.json key where they differ, for
// detecting a directive given in both places (dockerd refuses to start).
var configKeyOf = map[string]string{
	"host": "hosts", "insecure-registry": "insecure-registries", "default-ulimit": "default-ulimits",
	"authorization-plugin": "authorization-plugins", "registry-mirror": "registry-mirrors",
	"label": "labels", "storage-opt": "storage-opts", "log-opt": "log-opts", "exec-opt": "exec-opts",
	"dns-opt": "dns-opts", "add-runtime": "runtimes", "default-address-pool": "default-address-pools",
	"cdi-spec-dir": "cdi-spec-dirs", "feature": "features",
}

// parseDockerdFlags parses argv[1:] the way pflag does for dockerd.
func parseDockerdFlags(args []string) dockerdFlags {
	out := dockerdFlags{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		var name, value string
		var hasValue bool
		switch {
		case strings.HasPrefix(a, "--"):
			name, value, hasValue = strings.Cut(a[2:], "=")
		case strings.HasPrefix(a, "-") && len(a) > 1:
			name = a[1:2]
			if rest := a[2:]; rest != "" {
				value, hasValue = strings.TrimPrefix(rest, "="), true
			}
			if long, ok := shortFlags[name]; ok {
				name = long
			}
		default:
			continue // dockerd takes no positional arguments
		}
		if !hasValue {
			if boolFlags[name] {
				value = "true"
			} else if i+1 < len(args) {
				i++
				value = args[i]
			}
		}
		out[name] = append(out[name], value)
	}
	return out
}

// last returns the flag's last value.
func (f dockerdFlags) last(name string) (string, bool) {
	v := f[name]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// boolean returns the flag's value as dockerd reads it.
func (f dockerdFlags) boolean(name string) (bool, bool) {
	v, ok := f.last(name)
	if !ok {
		return false, false
	}
	switch strings.ToLower(v) {
	case "1", "t", "true", "":
		return true, true
	}
	return false, true
}

// configKeys lists the daemon.json keys these flags correspond to.
func (f dockerdFlags) configKeys() map[string]string {
	out := map[string]string{}
	for name := range f {
		key := name
		if k, ok := configKeyOf[name]; ok {
			key = k
		}
		out[key] = "--" + name
	}
	return out
}
