package containers

import (
	"sort"
	"strings"
)

// allCapabilities is every Linux capability Docker knows, which is what
// "ALL" expands to (moby's caps.GetAllCapabilities on a current kernel).
var allCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// defaultCapabilities is the set Docker grants every unprivileged container
// (moby oci/caps.DefaultCapabilities).
var defaultCapabilities = setOf(
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)

// dangerousCapabilities each give a container a path to the host.
var dangerousCapabilities = setOf(
	"SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "SYS_BOOT", "SYSLOG",
	"DAC_READ_SEARCH", "NET_ADMIN", "BPF", "PERFMON",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// normalizeCap accepts the spellings dockerd accepts: any case, with or
// without the CAP_ prefix.
func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" {
		return c
	}
	return strings.TrimPrefix(c, "CAP_")
}

// effectiveAddedCaps returns the capabilities the container holds beyond
// Docker's default set, sorted. It follows dockerd's own rules
// (oci/caps.TweakCapabilities) rather than a plain set difference: with
// --cap-add ALL every capability except the dropped ones is granted; with
// --cap-drop ALL only the added ones are; otherwise drops apply to the
// default set and adds are granted on top, so an explicit add wins over a
// drop of the same capability.
func effectiveAddedCaps(add, drop []string) []string {
	adds, drops := map[string]bool{}, map[string]bool{}
	for _, c := range add {
		adds[normalizeCap(c)] = true
	}
	for _, c := range drop {
		drops[normalizeCap(c)] = true
	}
	granted := map[string]bool{}
	switch {
	case adds["ALL"]:
		for _, c := range allCapabilities {
			if !drops[c] {
				granted[c] = true
			}
		}
	default:
		for c := range adds {
			granted[c] = true
		}
	}
	var out []string
	for c := range granted {
		if c != "" && !defaultCapabilities[c] {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}
