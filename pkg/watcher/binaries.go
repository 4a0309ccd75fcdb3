package watcher

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// binaryNames are hashed wherever found; a trailing * is a prefix match.
var binaryNames = []string{"dockerd", "docker", "containerd", "containerd-shim*", "runc"}

// baselineFile is the state file's name inside StateDir.
const baselineFile = "binaries.json"

// baseline is the state file: the first hash seen for each binary.
type baseline struct {
	Version  int                      `json:"version"`
	Binaries map[string]baselineEntry `json:"binaries"`
}

type baselineEntry struct {
	SHA256   string    `json:"sha256"`
	Size     int64     `json:"size"`
	Recorded time.Time `json:"recorded"`
}

// hashed is a binary's digests, cached against its stat state so that an
// unchanged file is not read again.
type hashed struct {
	state          fileState
	sha256, md5sum string
}

// discoverBinaries lists the binaries' host paths, deduplicated by where
// they really are (/bin is /usr/bin on merged-/usr systems, /usr/bin/runc
// may link to /usr/sbin/runc). The running daemon's own executable is
// included wherever it lives.
func (s *scanner) discoverBinaries(in *daemonInputs) []string {
	dirs := append(append([]string{}, s.cfg.BinaryDirs...), hostfs.BinDirs...)
	var out []string
	seen := map[string]bool{}
	addReal := func(p string) {
		real, err := s.fs.Resolve(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.scanError(p, err)
			}
			return
		}
		if seen[real] {
			return
		}
		if fi, err := os.Stat(s.fs.Local(real)); err != nil || !fi.Mode().IsRegular() {
			return
		}
		seen[real] = true
		out = append(out, real)
	}
	if in.proc != nil && in.proc.Exe != "" {
		addReal(in.proc.Exe)
	}
	for _, dir := range dirs {
		for _, name := range binaryNames {
			if prefix, ok := strings.CutSuffix(name, "*"); ok {
				ents, _ := os.ReadDir(s.fs.Local(dir))
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), prefix) {
						addReal(dir + "/" + e.Name())
					}
				}
				continue
			}
			addReal(dir + "/" + name)
		}
	}
	sort.Strings(out)
	return out
}

// hashFile returns the SHA-256 and MD5 of host path real, from cache when
// the file's stat state is unchanged.
func (s *scanner) hashFile(real string) (hashed, error) {
	fi, err := os.Stat(s.fs.Local(real))
	if err != nil {
		return hashed{}, err
	}
	st := stateOf(real, fi)
	if h, ok := s.hashes[real]; ok && h.state == st {
		return h, nil
	}
	f, err := os.Open(s.fs.Local(real))
	if err != nil {
		return hashed{}, err
	}
	defer f.Close()
	sh, mh := sha256.New(), md5.New()
	if _, err := io.Copy(io.MultiWriter(sh, mh), f); err != nil {
		return hashed{}, fmt.Errorf("reading %s: %w", real, err)
	}
	h := hashed{state: st, sha256: hex.EncodeToString(sh.Sum(nil)), md5sum: hex.EncodeToString(mh.Sum(nil))}
	s.hashes[real] = h
	return h, nil
}

// loadBaseline reads the state file. A missing file is an empty baseline;
// a corrupt one is set aside (never silently overwritten) and reported.
func (s *scanner) loadBaseline() *baseline {
	b := &baseline{Version: 1, Binaries: map[string]baselineEntry{}}
	p := filepath.Join(s.cfg.StateDir, baselineFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return b
	}
	if err != nil {
		s.countError(reasonStateFile)
		s.log.Error("binary baseline state file unreadable; keeping a baseline in memory only", logPath(p), logErr(err))
		return b
	}
	err = json.Unmarshal(data, b)
	if err == nil && b.Binaries == nil {
		b.Binaries = map[string]baselineEntry{}
	}
	if err != nil {
		s.countError(reasonStateFile)
		aside := p + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
		_ = os.Rename(p, aside)
		s.log.Error("binary baseline state file is corrupt; starting a new baseline",
			logPath(p), logErr(err), logString("moved_to", aside))
		return &baseline{Version: 1, Binaries: map[string]baselineEntry{}}
	}
	return b
}

// saveBaseline writes the state file atomically (write, fsync, rename).
func (s *scanner) saveBaseline(b *baseline) error {
	if err := os.MkdirAll(s.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating state directory %s: %w", s.cfg.StateDir, err)
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(s.cfg.StateDir, baselineFile)
	tmp, err := os.CreateTemp(s.cfg.StateDir, baselineFile+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// pkgSum is a package manager's recorded checksum for one file.
type pkgSum struct {
	Package, Algo, Sum string
	Manager            string // "dpkg" or "rpm"
}

// dpkgSums reads the md5sums dpkg recorded for the wanted host paths.
// dpkg records paths as installed (usr/sbin/dockerd), so both a binary's
// found and resolved paths are looked up.
func (s *scanner) dpkgSums(wanted map[string]bool) (map[string]pkgSum, error) {
	const infoDir = "/var/lib/dpkg/info"
	fi, err := os.Stat(s.fs.Local(infoDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // not a dpkg system
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", infoDir, err)
	}
	// dpkg replaces its info files by rename, which changes the
	// directory's mtime: an unchanged directory needs no re-reading.
	key := fmt.Sprintf("%d|%q", fi.ModTime().UnixNano(), sortedKeys(wanted))
	if s.dpkgCache.key == key {
		return s.dpkgCache.sums, nil
	}
	ents, err := os.ReadDir(s.fs.Local(infoDir))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", infoDir, err)
	}
	out := map[string]pkgSum{}
	defer func() { s.dpkgCache.key, s.dpkgCache.sums = key, out }()
	for _, e := range ents {
		pkg, ok := strings.CutSuffix(e.Name(), ".md5sums")
		if !ok {
			continue
		}
		data, err := os.ReadFile(s.fs.Local(infoDir + "/" + e.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			sum, file, ok := strings.Cut(sc.Text(), "  ")
			if !ok {
				continue
			}
			p := "/" + strings.TrimPrefix(file, "/")
			if wanted[p] {
				out[p] = pkgSum{Package: strings.SplitN(pkg, ":", 2)[0], Algo: "md5", Sum: strings.ToLower(sum), Manager: "dpkg"}
			}
		}
	}
	return out, nil
}

// judgeBinaries hashes each binary, compares it with its baseline and its
// package's recorded checksum, and records new binaries in the baseline.
func (s *scanner) judgeBinaries(bins []string, now time.Time) map[string][]findings.Finding {
	out := map[string][]findings.Finding{}
	if s.base == nil {
		s.base = s.loadBaseline()
	}
	wanted := map[string]bool{}
	for _, b := range bins {
		wanted[b] = true
		// dpkg on a merged-/usr system may have recorded /bin/x for /usr/bin/x.
		if rest, ok := strings.CutPrefix(b, "/usr"); ok {
			wanted[rest] = true
		}
	}
	sums, err := s.dpkgSums(wanted)
	if err != nil {
		s.countError(reasonPackageDB)
		s.logOnce("pkgdb", "reading the package manager's checksums failed", logErr(err))
	}
	rpmDB := s.hasRPMDB()
	changed := false
	for _, b := range bins {
		h, err := s.hashFile(b)
		if err != nil {
			s.scanError(b, err)
			continue
		}
		s.observe(b, h.state)
		subject := findings.Subject{Kind: findings.KindFile, Name: b}
		var fs []findings.Finding
		if old, ok := s.base.Binaries[b]; !ok {
			s.base.Binaries[b] = baselineEntry{SHA256: h.sha256, Size: int64(h.state.size), Recorded: now.UTC()}
			changed = true
		} else if old.SHA256 != h.sha256 {
			f := findings.New("file.binary_changed", subject,
				fmt.Sprintf("%s changed since its baseline of %s", b, old.Recorded.Format(time.RFC3339))).
				With("old_sha256", old.SHA256).With("new_sha256", h.sha256).With("baseline_recorded", old.Recorded.Format(time.RFC3339))
			f.Remediation = fmt.Sprintf("Verify the change to %s (package upgrade?); reinstall its package if it was not expected. "+
				"To accept it, remove the entry for %s from %s and dockward records the new hash.",
				b, b, filepath.Join(s.cfg.StateDir, baselineFile))
			fs = append(fs, f)
		}
		sum, ok := sums[b]
		if !ok {
			if rest, cut := strings.CutPrefix(b, "/usr"); cut {
				sum, ok = sums[rest]
			}
		}
		if !ok && rpmDB {
			sum, ok = s.rpmSum(b)
		}
		if ok {
			if f, bad := checksumMismatch(subject, b, sum, h); bad {
				fs = append(fs, f)
			}
		}
		out[b] = fs
	}
	if changed {
		if err := s.saveBaseline(s.base); err != nil {
			s.countError(reasonStateFile)
			s.logOnce("state", "saving the binary baseline failed; it is kept in memory only", logErr(err))
		}
	}
	return out
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

// rpmDBDirs are where rpm keeps its database, old and new layouts.
var rpmDBDirs = []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"}

func (s *scanner) hasRPMDB() bool {
	if s.rpmCommand == "" {
		return false
	}
	for _, d := range rpmDBDirs {
		if fi, err := os.Stat(s.fs.Local(d)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// rpmSum asks rpm (its database format is rpm's own business) for the
// digest it recorded for host path p.
func (s *scanner) rpmSum(p string) (pkgSum, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.rpmCommand, "--root", s.fs.Dir(), "-qf", p,
		"--queryformat", "%{NAME} %{FILEDIGESTALGO}\n[%{FILENAMES} %{FILEDIGESTS}\n]")
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) { // not owned by a package is exit status 1: not an error
			s.countError(reasonPackageDB)
			s.logOnce("rpm", "running rpm failed", logErr(err))
		}
		return pkgSum{}, false
	}
	return parseRPMQuery(out, p)
}

// parseRPMQuery reads "NAME ALGO" then "FILE DIGEST" lines. ALGO is rpm's
// PGP hash number: 1 md5 (also when unset on old packages), 8 sha256.
func parseRPMQuery(out []byte, p string) (pkgSum, bool) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		return pkgSum{}, false
	}
	head := strings.Fields(lines[0])
	if len(head) != 2 {
		return pkgSum{}, false
	}
	algo := map[string]string{"1": "md5", "(none)": "md5", "8": "sha256"}[head[1]]
	for _, l := range lines[1:] {
		file, digest, ok := strings.Cut(l, " ")
		if ok && file == p && digest != "" {
			return pkgSum{Package: head[0], Algo: algo, Sum: strings.ToLower(digest), Manager: "rpm"}, true
		}
	}
	return pkgSum{}, false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
