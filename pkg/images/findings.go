package images

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images/inventory"
)

// judgeImage is one image's findings, and its tally when it can be counted
// (read, and every ecosystem it needs has a zip).
func (s *Source) judgeImage(im *imageState, status map[string]dbStatus) ([]findings.Finding, *tally) {
	subject := findings.ImageSubject(im.id, im.refs)
	var out []findings.Finding
	if im.failure != nil {
		out = append(out, findings.New("vulns.scan_skipped", subject,
			fmt.Sprintf("Image %s was not scanned: %v", subject.Name, im.failure.Err)).
			With("reason", im.failure.Reason))
		return out, nil
	}
	if im.inv == nil {
		return nil, nil // queued; judged once read
	}
	if len(im.inv.Skipped) > 0 {
		out = append(out, skippedFinding(subject, im.inv))
	}
	t := s.tallyOf(im.inv, status)
	if !t.complete {
		return out, nil
	}
	if t.total() > 0 {
		f := findings.New("image.vulnerable", subject, fmt.Sprintf("Image %s: %s", subject.Name, t.summary()))
		f.Severity = s.findingSeverity(t)
		f.Vulnerabilities = t.list()
		if im.inv.OS != "" {
			f = f.With("os", im.inv.OS)
		}
		out = append(out, f.With("packages", strconv.Itoa(len(im.inv.Packages))))
	}
	return out, &t
}

// findingSeverity maps the image's highest fixable vulnerability severity
// ("none" without one) through images.finding_severity.
func (s *Source) findingSeverity(t tally) findings.Severity {
	key := "none"
	if l, ok := t.highestFixable(); ok {
		key = l.String()
	}
	name, ok := s.cfg.FindingSeverity[key]
	if !ok {
		name = DefaultFindingSeverity()[key]
	}
	sev, err := findings.ParseSeverity(name)
	if err != nil {
		return findings.Info // Validate rejects this; never reached
	}
	return sev
}

func skippedFinding(subject findings.Subject, inv *inventory.Inventory) findings.Finding {
	var reasons, details []string
	for _, sk := range inv.Skipped {
		reasons = append(reasons, sk.Reason)
		details = append(details, sk.Detail)
	}
	f := findings.New("vulns.scan_skipped", subject,
		fmt.Sprintf("Image %s was scanned only in part: %s", subject.Name, strings.Join(details, "; "))).
		With("reason", strings.Join(reasons, ","))
	if len(inv.Warnings) > 0 {
		f = f.With("warnings", strings.Join(inv.Warnings, "; "))
	}
	return f
}

// judgeContainer is one running container's findings and its tally: its own
// when its packages drifted from its image's, else its image's.
func (s *Source) judgeContainer(c *containerState, status map[string]dbStatus) ([]findings.Finding, *tally) {
	im := s.images[c.imageID]
	name := shortID(c.imageID)
	if im != nil {
		name = im.name()
	}
	subject := findings.ContainerSubject(c.id, c.name, name, c.labels)
	var imageTally *tally
	if im != nil && im.inv != nil {
		if t := s.tallyOf(im.inv, status); t.complete {
			imageTally = &t
		}
	}
	drift, own := s.drift(c, im, subject, status, imageTally)
	if own != nil {
		return drift, own
	}
	return drift, imageTally
}

// drift is the container.package_drift finding of a container whose package
// databases differ from its image's, and the container's own tally when its
// packages could be read.
func (s *Source) drift(c *containerState, im *imageState, subject findings.Subject, status map[string]dbStatus, imageTally *tally) ([]findings.Finding, *tally) {
	switch {
	case c.unreadable != "":
		return []findings.Finding{findings.New("container.package_drift", subject,
			fmt.Sprintf("Container %s: its package database cannot be read as its image's: %s", c.name, c.unreadable)).
			With("unreadable", c.unreadable)}, nil
	case c.inv == nil && len(c.changed) > 0:
		return []findings.Finding{findings.New("container.package_drift", subject,
			fmt.Sprintf("Container %s changed its package database since its image (%s); its packages are not readable without access to /proc/%d/root", c.name, strings.Join(c.changed, ", "), c.pid)).
			With("changed", strings.Join(c.changed, ", "))}, nil
	case c.inv == nil || im == nil || im.inv == nil || inventory.Same(im.inv.Packages, c.inv.Packages):
		return nil, nil
	}
	added, removed, changed := inventory.Diff(im.inv.Packages, c.inv.Packages)
	own := s.tallyOf(c.inv, status)
	f := findings.New("container.package_drift", subject,
		fmt.Sprintf("Container %s runs packages its image %s does not have: %d added, %d removed, %d changed", c.name, im.name(),
			len(added), len(removed), len(changed))).
		With("added", listed(added)).With("removed", listed(removed)).With("changed", listed(changed))
	if own.complete {
		f.Vulnerabilities = findings.ListOf(onlyIn(own, imageTally))
		if n := f.Vulnerabilities.Len(); n > 0 {
			f.Message += fmt.Sprintf("; %d vulnerabilities its image does not have", n)
		}
		return []findings.Finding{f}, &own
	}
	return []findings.Finding{f}, nil
}

// onlyIn lists the container's entries its image's tally does not have.
func onlyIn(own tally, image *tally) []findings.Vulnerability {
	has := map[string]bool{}
	if image != nil {
		for _, c := range image.chunks {
			for _, v := range c {
				has[v.ID+"\x00"+v.Package+"\x00"+v.Installed] = true
			}
		}
	}
	var out []findings.Vulnerability
	for _, c := range own.chunks {
		for _, v := range c {
			if !has[v.ID+"\x00"+v.Package+"\x00"+v.Installed] {
				out = append(out, v)
			}
		}
	}
	return out
}

// listed bounds a detail list to what a log line should carry.
func listed(items []string) string {
	if len(items) > 10 {
		return strings.Join(items[:10], ", ") + fmt.Sprintf(" and %d more", len(items)-10)
	}
	return strings.Join(items, ", ")
}

// judgeDB is one ecosystem's database findings: missing (or unreadable),
// or older than vulns.db.max_age.
func (s *Source) judgeDB(base string, st dbStatus) []findings.Finding {
	subject := findings.Subject{Kind: findings.KindFile, Name: s.db.ZipPath(base)}
	switch {
	case st.err != nil || !st.info.Present:
		why := "it was never downloaded"
		switch {
		case st.err != nil:
			why = st.err.Error()
		case s.cfg.Vulns.DB.Offline:
			why = "vulns.db.offline is set and no zip was dropped in"
		case s.lastUpdateErr(base) != nil:
			why = s.lastUpdateErr(base).Error()
		}
		return []findings.Finding{findings.New("vulns.db_missing", subject,
			fmt.Sprintf("No usable OSV data for %s, so its packages are not matched: %s", base, why)).
			With("ecosystem", base)}
	case st.info.Age(s.now()) > s.cfg.Vulns.DB.MaxAge:
		age := st.info.Age(s.now()).Round(60e9)
		f := findings.New("vulns.db_stale", subject,
			fmt.Sprintf("The OSV data for %s is %s old (vulns.db.max_age %s)", base, age, s.cfg.Vulns.DB.MaxAge)).
			With("ecosystem", base).With("age", age.String())
		if err := s.lastUpdateErr(base); err != nil {
			f = f.With("last_error", err.Error())
		}
		return []findings.Finding{f}
	}
	return nil
}
