package watcher

import (
	"fmt"
	"path"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

// Binary integrity: each of Docker's binaries (found by findBinaries) is
// hashed (hashCache), compared with the first hash seen of it (the
// baselineStore) and with the checksum its package recorded (packageDB).

// judgeBinaries hashes each binary, compares it with its baseline and its
// package's recorded checksum, and records new binaries in the baseline.
func (s *scanner) judgeBinaries(bins []string, now time.Time) map[string][]findings.Finding {
	out := map[string][]findings.Finding{}
	base := s.baseline.get()
	recorded := s.pkgs.recorded(bins)
	changed := false
	for _, b := range bins {
		h, err := s.hashes.hash(b)
		if err != nil {
			s.scanError(b, err)
			continue
		}
		s.observe(b, h.state)
		subject := findings.Subject{Kind: findings.KindFile, Name: b}
		var fs []findings.Finding
		if old, ok := base.Binaries[b]; !ok {
			base.Binaries[b] = baselineEntry{SHA256: h.sha256, Size: int64(h.state.size), Recorded: now.UTC()}
			changed = true
		} else if old.SHA256 != h.sha256 {
			fs = append(fs, s.binaryChanged(subject, old, h))
		}
		if sum, ok := recorded(b); ok {
			if f, bad := checksumMismatch(subject, b, sum, h); bad {
				fs = append(fs, f)
			}
		}
		out[b] = fs
	}
	if changed {
		if err := s.baseline.save(); err != nil {
			s.countError(reasonStateFile)
			s.logOnce("state", "saving the binary baseline failed; it is kept in memory only", logErr(err))
		}
	}
	return out
}

// binaryChanged is the finding for a binary whose hash left its baseline.
func (s *scanner) binaryChanged(subject findings.Subject, old baselineEntry, h hashed) findings.Finding {
	b := subject.Name
	f := findings.New("file.binary_changed", subject,
		fmt.Sprintf("%s changed since its baseline of %s", b, old.Recorded.Format(time.RFC3339))).
		With("old_sha256", old.SHA256).With("new_sha256", h.sha256).With("baseline_recorded", old.Recorded.Format(time.RFC3339))
	f.Remediation = fmt.Sprintf("Verify the change to %s (package upgrade?); reinstall its package if it was not expected. "+
		"To accept it, remove the entry for %s from %s and dockward records the new hash.",
		b, b, s.baseline.path())
	return f
}

// binaryScope is the sink scope of one binary.
func binaryScope(p string) string { return "binary:" + path.Clean(p) }

// checksumMismatch compares a binary with its package's recorded checksum.
func checksumMismatch(subject findings.Subject, b string, sum pkgSum, h hashed) (findings.Finding, bool) {
	var have string
	switch sum.Algo {
	case "md5":
		have = h.md5sum
	case "sha256":
		have = h.sha256
	default:
		return findings.Finding{}, false // a digest dockward does not compute
	}
	if sum.Sum == have {
		return findings.Finding{}, false
	}
	f := findings.New("file.binary_checksum_mismatch", subject,
		fmt.Sprintf("%s differs from the %s checksum recorded by package %s", b, sum.Algo, sum.Package)).
		With("package", sum.Package).With("package_"+sum.Algo, sum.Sum).With(sum.Algo, have).With("sha256", h.sha256)
	if sum.Manager == "rpm" {
		f.Remediation = fmt.Sprintf("dnf reinstall %s  (then check: rpm -V %s)", sum.Package, sum.Package)
	} else {
		f.Remediation = fmt.Sprintf("apt-get install --reinstall %s  (then check: dpkg --verify %s)", sum.Package, sum.Package)
	}
	return f, true
}
