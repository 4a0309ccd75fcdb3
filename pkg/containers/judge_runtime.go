package containers

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// PortAllowance lets the containers it selects publish the container ports
// it lists (CIS 5.9). Container and Image are globs (path.Match) on the
// container's name and its image reference; both must match when both are
// set.
type PortAllowance struct {
	Container string `yaml:"container"`
	Image     string `yaml:"image"`
	// Ports are container ports: "80", "443/tcp", "8000-8010/udp"; a port
	// without a protocol means tcp.
	Ports []string `yaml:"ports"`
}

// portSpec is one parsed entry of PortAllowance.Ports.
type portSpec struct {
	from, to uint16
	proto    string
}

var portSpecRe = regexp.MustCompile(`^([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?$`)

func parsePortSpec(v string) (portSpec, error) {
	m := portSpecRe.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return portSpec{}, fmt.Errorf("%q is not a port: want 80, 443/tcp or 8000-8010/udp", v)
	}
	from, err1 := strconv.ParseUint(m[1], 10, 16)
	to, err2 := from, error(nil)
	if m[2] != "" {
		to, err2 = strconv.ParseUint(m[2], 10, 16)
	}
	if err1 != nil || err2 != nil || from == 0 || to < from {
		return portSpec{}, fmt.Errorf("%q is not a port range within 1-65535", v)
	}
	return portSpec{from: uint16(from), to: uint16(to), proto: orDefault(m[3], "tcp")}, nil
}

// validate reports what is wrong with one allowance.
func (a PortAllowance) validate() error {
	if a.Container == "" && a.Image == "" {
		return fmt.Errorf("needs container or image (a name or image glob)")
	}
	for _, g := range []string{a.Container, a.Image} {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("bad glob %q: %w", g, err)
		}
	}
	if len(a.Ports) == 0 {
		return fmt.Errorf("ports is empty")
	}
	for _, p := range a.Ports {
		if _, err := parsePortSpec(p); err != nil {
			return err
		}
	}
	return nil
}

// allows reports whether the allowance covers container port p of the
// container (name without "/", image reference).
func (a PortAllowance) allows(name, image string, p network.Port) bool {
	if a.Container != "" && !globMatch(a.Container, name) || a.Image != "" && !globMatch(a.Image, image) {
		return false
	}
	for _, v := range a.Ports {
		spec, err := parsePortSpec(v)
		if err == nil && string(p.Proto()) == spec.proto && p.Num() >= spec.from && p.Num() <= spec.to {
			return true
		}
	}
	return false
}

func globMatch(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// publishedPorts lists the container ports published on the host that no
// allowance covers (CIS 5.9). With -P every exposed port is published.
func (j *judgement) publishedPorts(hc *container.HostConfig, exposed network.PortSet, allowed []PortAllowance) {
	published := map[network.Port]bool{}
	for p, bindings := range hc.PortBindings {
		if len(bindings) > 0 {
			published[p] = true
		}
	}
	if hc.PublishAllPorts {
		for p := range exposed {
			published[p] = true
		}
	}
	var extra []string
	for p := range published {
		ok := false
		for _, a := range allowed {
			if a.allows(j.subj.Name, j.subj.Image, p) {
				ok = true
				break
			}
		}
		if !ok {
			extra = append(extra, p.String())
		}
	}
	if len(extra) == 0 {
		return
	}
	sort.Strings(extra)
	j.add("container.published_ports", "container publishes ports no allow list entry covers: "+strings.Join(extra, ", "),
		"ports", strings.Join(extra, ","))
}

// runtimeOptions judges the run options that are a review rather than a
// setting: ulimits overriding the daemon's (5.19), the default bridge
// (5.30) and an image referenced by a mutable tag (5.28).
func (j *judgement) runtimeOptions(c container.InspectResponse, hc *container.HostConfig) {
	if len(hc.Ulimits) > 0 {
		var ls []string
		for _, u := range hc.Ulimits {
			if u != nil {
				ls = append(ls, u.String())
			}
		}
		j.add("container.ulimits_override", "container overrides the default ulimits: "+strings.Join(ls, ", "),
			"ulimits", strings.Join(ls, ","))
	}
	if onDefaultBridge(c, hc) {
		j.add("container.default_bridge", "container is attached to the default bridge network (docker0)")
	}
	if why, pinned := imagePinned(j.subj.Image); !pinned {
		j.add("container.image_not_pinned", "image "+j.subj.Image+" is referenced "+why, "image", j.subj.Image)
	}
}

// onDefaultBridge: the default network mode is the bridge on Linux, and a
// container can also be connected to it after it was created.
func onDefaultBridge(c container.InspectResponse, hc *container.HostConfig) bool {
	if hc.NetworkMode == "default" || hc.NetworkMode == network.NetworkBridge {
		return true
	}
	if c.NetworkSettings != nil {
		_, ok := c.NetworkSettings.Networks[network.NetworkBridge]
		return ok
	}
	return false
}

// imageIDRe matches an image referenced by its ID, full or short: an ID
// names one image for ever.
var imageIDRe = regexp.MustCompile(`^(sha256:)?[0-9a-f]{12,64}$`)

// imagePinned reports whether ref names one immutable image (a digest or
// an ID), and if not, how it is referenced.
func imagePinned(ref string) (string, bool) {
	if imageIDRe.MatchString(ref) {
		return "", true
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "by an unparsable reference", false
	}
	if _, ok := named.(reference.Digested); ok {
		return "", true
	}
	if t, ok := named.(reference.Tagged); ok && t.Tag() != "latest" {
		return "by tag " + t.Tag() + " only (no digest)", false
	}
	return "by latest (no tag or the latest tag)", false
}
