// Package dockerinfo reads GET /info, the daemon's own account of the
// settings it runs with, into the form the sources judge. It is parsed once
// per fetch: the containers source fetches it on a daemon reload and hands
// the result to the host source with the reload notification.
package dockerinfo

import (
	"strings"

	"github.com/moby/moby/api/types/system"
)

// Info is GET /info with its SecurityOptions parsed.
type Info struct {
	system.Info
	// security holds each SecurityOptions entry's key=value pairs by its
	// name ("name=seccomp,profile=default" is security["seccomp"]).
	security map[string]map[string]string
}

// Parse parses raw's SecurityOptions; a nil raw (no /info) is a nil Info.
func Parse(raw *system.Info) *Info {
	if raw == nil {
		return nil
	}
	info := &Info{Info: *raw, security: make(map[string]map[string]string, len(raw.SecurityOptions))}
	for _, opt := range raw.SecurityOptions {
		kv := map[string]string{}
		for _, part := range strings.Split(opt, ",") {
			k, v, _ := strings.Cut(part, "=")
			kv[k] = v
		}
		if name, ok := kv["name"]; ok {
			if _, dup := info.security[name]; !dup { // the first entry of a name counts
				info.security[name] = kv
			}
		}
	}
	return info
}

// SecurityOption returns the key=value pairs of the SecurityOptions entry
// named name ("name" included), and whether the daemon lists it. Security
// features the daemon has on (apparmor, seccomp, selinux, userns, rootless,
// no-new-privileges, cgroupns) are listed; those it has off are not.
func (i *Info) SecurityOption(name string) (map[string]string, bool) {
	kv, ok := i.security[name]
	return kv, ok
}
