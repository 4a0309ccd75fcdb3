package findings

import (
	"strings"
	"time"
)

// Subject is what a finding is about: a container, the daemon, a host path
// or an audit watch.
type Subject struct {
	Kind Kind `json:"kind"`
	// Name is the container's name without the leading "/", "dockerd", or the
	// host path.
	Name string `json:"name"`
	// ContainerID is the full container ID; empty for other kinds.
	ContainerID string `json:"container_id,omitempty"`
	// Image is a container's image reference, or an image subject's
	// 12-hex ID.
	Image string `json:"image,omitempty"`
	// ImageID is an image subject's full ID (sha256:...); empty for other
	// kinds.
	ImageID string `json:"image_id,omitempty"`
	// Labels are the container's labels, used only to match exemptions.
	Labels map[string]string `json:"-"`
}

// ShortID is the 12-hex container ID used in metrics and logs.
func (s Subject) ShortID() string { return ShortID(s.ContainerID) }

// ShortID is the 12-hex form of a container ID, as docker ps shows it and
// as metrics and logs carry it; a shorter ID is returned as it is.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// DaemonName is the subject name of every finding about the Docker daemon.
const DaemonName = "dockerd"

// DaemonSubject is the subject of a finding about the Docker daemon itself.
// kind is the rule's catalogued kind: daemon for its settings, audit for
// whether its actions are audited.
func DaemonSubject(kind Kind) Subject { return Subject{Kind: kind, Name: DaemonName} }

// subjectKey identifies the subject within a kind; containers by ID because
// names can be reused after a rename. A struct, not a joined string, so the
// store's hot path builds keys without allocating.
type subjectKey struct {
	kind Kind
	id   string
}

func (s Subject) key() subjectKey {
	if s.Kind == KindContainer && s.ContainerID != "" {
		return subjectKey{s.Kind, s.ContainerID}
	}
	if s.Kind == KindImage && s.ImageID != "" {
		return subjectKey{s.Kind, s.ImageID}
	}
	return subjectKey{s.Kind, s.Name}
}

func (k subjectKey) less(o subjectKey) bool {
	if k.kind != o.kind {
		return k.kind < o.kind
	}
	return k.id < o.id
}

// ContainerSubject builds the subject for a container from inspect data.
func ContainerSubject(id, name, image string, labels map[string]string) Subject {
	return Subject{Kind: KindContainer, Name: strings.TrimPrefix(name, "/"), ContainerID: id, Image: image, Labels: labels}
}

// ImageSubject builds the subject for a local image: named by its first
// repository tag (sorted, so the name is stable), or by its short ID when it
// has none, and keyed by its ID so a retag does not reopen its findings.
func ImageSubject(id string, repoTags []string) Subject {
	short := strings.TrimPrefix(id, "sha256:")
	if len(short) > 12 {
		short = short[:12]
	}
	name := ""
	for _, t := range repoTags {
		if t != "" && t != "<none>:<none>" && (name == "" || t < name) {
			name = t
		}
	}
	if name == "" {
		name = "sha256:" + short
	}
	return Subject{Kind: KindImage, Name: name, Image: short, ImageID: id}
}

// Finding is one open (rule, subject) pair.
type Finding struct {
	Rule    string  `json:"rule"`
	Subject Subject `json:"subject"`
	// Severity is the effective severity. New sets the rule's default; a
	// source may change it to vary that default (a read-only mount is less
	// severe than a writable one). Config overrides win over both.
	Severity Severity `json:"severity"`
	// CIS is the benchmark reference; empty means the rule's.
	CIS     string `json:"cis"`
	Message string `json:"message"`
	// Details carry the evidence (mount source, capability names, old and
	// new hash...). Never a secret's value.
	Details   map[string]string `json:"details,omitempty"`
	FirstSeen time.Time         `json:"first_seen"`
	// Exempt is set by the store when an exemption in config matches.
	Exempt       bool   `json:"exempt,omitempty"`
	ExemptReason string `json:"exempt_reason,omitempty"`
	Remediation  string `json:"remediation,omitempty"`
	// Vulnerabilities is the per-CVE list of an image.vulnerable or
	// container.package_drift finding; the counts are metrics, the list is
	// here so that no CVE becomes a label.
	Vulnerabilities VulnerabilityList `json:"vulnerabilities,omitzero"`
}

// Vulnerability is one known vulnerability of one installed package.
type Vulnerability struct {
	// ID is the CVE (or the record's own ID when it names no CVE).
	ID string `json:"id"`
	// Package is the package as the vulnerability records name it (Debian's
	// and Alpine's source package, whose binaries the image installs).
	Package   string `json:"package"`
	Installed string `json:"installed"`
	// Fixed is the first fixed version; empty when no fix exists yet.
	Fixed string `json:"fixed,omitempty"`
	// Severity is critical, high, medium, low, negligible or unknown.
	Severity string `json:"severity"`
	// Records are the OSV records that name it (a DSA and a DEBIAN-CVE).
	Records []string `json:"records,omitempty"`
}

// findingKey identifies one (rule, subject) pair.
type findingKey struct {
	rule    string
	subject subjectKey
}

func (f Finding) key() findingKey { return findingKey{f.Rule, f.Subject.key()} }

// New builds a finding for rule with the rule's default severity and CIS
// reference. It panics on an unknown rule: sources only use IDs from the
// catalogue, and a typo must fail the first test that reaches it.
func New(rule string, subject Subject, message string) Finding {
	r, ok := LookupRule(rule)
	if !ok {
		panic("findings: unknown rule " + rule)
	}
	return Finding{Rule: rule, Subject: subject, Severity: r.Severity, CIS: r.CIS, Message: message, Remediation: r.Remediation}
}

// With returns f with one detail added.
func (f Finding) With(key, value string) Finding {
	d := make(map[string]string, len(f.Details)+1)
	for k, v := range f.Details {
		d[k] = v
	}
	d[key] = value
	f.Details = d
	return f
}
