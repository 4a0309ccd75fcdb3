package watcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/dockward/dockward/pkg/hostfs"
)

// pkgSum is a package manager's recorded checksum for one file.
type pkgSum struct {
	Package, Algo, Sum string
	Manager            string // "dpkg" or "rpm"
}

// rpmDBDirs are where rpm keeps its database, old and new layouts.
var rpmDBDirs = []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"}

// packageDB reads the checksums the host's package manager recorded for
// its files: dpkg's md5sums, or rpm's file digests.
type packageDB struct {
	root hostfs.Root
	// rpmCommand queries rpm's database on rpm-based hosts ("" disables).
	rpmCommand string
	// problem counts and logs (once while it lasts) a package database
	// that could not be read.
	problem func(key, msg string, err error)

	// dpkgCache keeps dpkg's recorded sums until its info directory changes.
	dpkgCache struct {
		key  string
		sums map[string]pkgSum
	}
}

// recorded returns a lookup of the checksum recorded for each of bins (host
// paths): dpkg's, read once for all of them, else rpm's, asked per binary
// when looked up.
func (db *packageDB) recorded(bins []string) func(bin string) (pkgSum, bool) {
	wanted := map[string]bool{}
	for _, b := range bins {
		wanted[b] = true
		// dpkg on a merged-/usr system may have recorded /bin/x for /usr/bin/x.
		if rest, ok := strings.CutPrefix(b, "/usr"); ok {
			wanted[rest] = true
		}
	}
	sums, err := db.dpkgSums(wanted)
	if err != nil {
		db.problem("pkgdb", "reading the package manager's checksums failed", err)
	}
	rpmDB := db.hasRPMDB()
	return func(b string) (pkgSum, bool) {
		sum, ok := sums[b]
		if !ok {
			if rest, cut := strings.CutPrefix(b, "/usr"); cut {
				sum, ok = sums[rest]
			}
		}
		if !ok && rpmDB {
			sum, ok = db.rpmSum(b)
		}
		return sum, ok
	}
}

// dpkgSums reads the md5sums dpkg recorded for the wanted host paths.
// dpkg records paths as installed (usr/sbin/dockerd), so both a binary's
// found and resolved paths are looked up.
func (db *packageDB) dpkgSums(wanted map[string]bool) (map[string]pkgSum, error) {
	const infoDir = "/var/lib/dpkg/info"
	fi, err := os.Stat(db.root.Local(infoDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // not a dpkg system
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", infoDir, err)
	}
	// dpkg replaces its info files by rename, which changes the
	// directory's mtime: an unchanged directory needs no re-reading.
	key := fmt.Sprintf("%d|%q", fi.ModTime().UnixNano(), sortedKeys(wanted))
	if db.dpkgCache.key == key {
		return db.dpkgCache.sums, nil
	}
	ents, err := os.ReadDir(db.root.Local(infoDir))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", infoDir, err)
	}
	out := map[string]pkgSum{}
	defer func() { db.dpkgCache.key, db.dpkgCache.sums = key, out }()
	for _, e := range ents {
		pkg, ok := strings.CutSuffix(e.Name(), ".md5sums")
		if !ok {
			continue
		}
		data, err := os.ReadFile(db.root.Local(infoDir + "/" + e.Name()))
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

func (db *packageDB) hasRPMDB() bool {
	if db.rpmCommand == "" {
		return false
	}
	for _, d := range rpmDBDirs {
		if fi, err := os.Stat(db.root.Local(d)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// rpmSum asks rpm (its database format is rpm's own business) for the
// digest it recorded for host path p.
func (db *packageDB) rpmSum(p string) (pkgSum, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, db.rpmCommand, "--root", db.root.Dir(), "-qf", p,
		"--queryformat", "%{NAME} %{FILEDIGESTALGO}\n[%{FILENAMES} %{FILEDIGESTS}\n]")
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) { // not owned by a package is exit status 1: not an error
			db.problem("rpm", "running rpm failed", err)
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
