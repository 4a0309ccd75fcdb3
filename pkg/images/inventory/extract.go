package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/google/osv-scalibr/artifact/image/layerscanning/image"
	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/osrelease"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"
	scalibrfs "github.com/google/osv-scalibr/fs"
	"github.com/google/osv-scalibr/plugin"
	"go.uber.org/zap"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"

	"github.com/dockward/dockward/pkg/images/osv"
)

// Limits bound what one extraction reads.
type Limits struct {
	// MaxImageSize is the largest image export read, in bytes.
	MaxImageSize int64
	// MaxDatabaseSize is the largest package database file parsed.
	MaxDatabaseSize int64
}

// Error is an extraction that produced no inventory.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Extractor reads inventories. Extractions run one at a time: osv-scalibr
// logs through one process-wide logger, which this package points at the
// extraction in progress.
type Extractor struct {
	limits  Limits
	tempDir string
	log     *zap.Logger
	now     func() time.Time
}

// NewExtractor returns an extractor that writes image exports under tempDir.
func NewExtractor(limits Limits, tempDir string, log *zap.Logger) *Extractor {
	if log == nil {
		log = zap.NewNop()
	}
	return &Extractor{limits: limits, tempDir: tempDir, log: log, now: time.Now}
}

// Databases are the package databases osv-scalibr's dpkg, apk and rpm
// extractors read; only these are opened.
var Databases = []string{
	"var/lib/dpkg/status", "var/lib/dpkg/status.d", "usr/lib/opkg/status",
	"lib/apk/db/installed", "usr/lib/apk/db/installed",
	"var/lib/rpm/Packages", "var/lib/rpm/Packages.db", "var/lib/rpm/rpmdb.sqlite",
	"usr/lib/sysimage/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db", "usr/lib/sysimage/rpm/rpmdb.sqlite",
	"usr/share/rpm/Packages", "usr/share/rpm/Packages.db", "usr/share/rpm/rpmdb.sqlite",
}

// FromExport reads one image from the Engine's export of it (the
// `docker save` tar): the export is written to a temporary file under the
// size cap, laid out layer by layer by osv-scalibr's layer scanner (so
// later layers and whiteouts win), and its package databases extracted.
func (e *Extractor) FromExport(ctx context.Context, id string, export io.Reader) (Inventory, error) {
	logs := e.lock()
	defer logs.release()
	if err := os.MkdirAll(e.tempDir, 0o700); err != nil {
		return Inventory{}, &Error{ReasonExport, fmt.Errorf("creating the temporary directory: %w", err)}
	}
	tmp, err := os.CreateTemp(e.tempDir, "export-*.tar")
	if err != nil {
		return Inventory{}, &Error{ReasonExport, fmt.Errorf("creating a temporary file: %w", err)}
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(export, e.limits.MaxImageSize+1))
	closeErr := tmp.Close()
	switch {
	case err != nil:
		return Inventory{}, &Error{ReasonExport, fmt.Errorf("reading the export of %s: %w", id, err)}
	case closeErr != nil:
		return Inventory{}, &Error{ReasonExport, fmt.Errorf("writing the export of %s: %w", id, closeErr)}
	case n > e.limits.MaxImageSize:
		return Inventory{}, &Error{ReasonTooLarge, fmt.Errorf("the export of %s is over images.max_image_size (%d bytes)", id, e.limits.MaxImageSize)}
	}
	img, err := image.FromTarball(tmp.Name(), &image.Config{
		// A database over the cap must still be seen, so the extractor
		// reports it as too large instead of it looking absent.
		MaxFileBytes:    4*e.limits.MaxDatabaseSize + 1,
		MaxSymlinkDepth: image.DefaultMaxSymlinkDepth,
	})
	if err != nil {
		return Inventory{}, &Error{ReasonCorrupt, fmt.Errorf("reading the export of %s as an image: %w", id, err)}
	}
	defer img.CleanUp()
	os.Remove(tmp.Name()) // the layers are unpacked; free the disk early
	return e.extract(ctx, id, img.FS(), logs)
}

// FromRoot reads a running container's packages through its root, opened
// with os.OpenRoot on /proc/<pid>/root so no path or symlink inside it can
// reach outside it.
func (e *Extractor) FromRoot(ctx context.Context, id string, root *os.Root) (Inventory, error) {
	fsys, ok := root.FS().(scalibrfs.FS)
	if !ok {
		return Inventory{}, &Error{ReasonUnreadable, errors.New("os.Root's file system lacks ReadDir or Stat")}
	}
	logs := e.lock()
	defer logs.release()
	return e.extract(ctx, id, fsys, logs)
}

// extractMu serialises extractions (see Extractor).
var extractMu sync.Mutex

// lock starts one extraction; release ends it.
func (e *Extractor) lock() *logCapture {
	extractMu.Lock()
	return captureLogs(e.log)
}

func (e *Extractor) extract(ctx context.Context, id string, fsys scalibrfs.FS, logs *logCapture) (Inventory, error) {
	inv := Inventory{Format: Format, ID: id, Extracted: e.now().UTC()}
	release, _ := osrelease.GetOSRelease(fsys)
	inv.OS, inv.OSID = release["PRETTY_NAME"], release["ID"]
	paths, skips := presentDatabases(fsys)
	inv.Skipped = append(inv.Skipped, skips...)
	if len(paths) > 0 {
		pkgs, skips, err := e.run(ctx, fsys, paths)
		if err != nil {
			return Inventory{}, &Error{ReasonExtract, fmt.Errorf("extracting the packages of %s: %w", id, err)}
		}
		inv.Packages, inv.Skipped = pkgs, append(inv.Skipped, skips...)
	}
	if len(inv.Packages) == 0 && len(inv.Skipped) == 0 && expectsDatabase(release) {
		inv.Skipped = append(inv.Skipped, Skip{ReasonNoDatabase,
			fmt.Sprintf("%s has a package manager but no package database was found (deleted, or a symlink leading out of the image)", orID(inv))})
	}
	inv.Skipped = append(inv.Skipped, unknownReleases(inv.Packages)...)
	inv.Warnings = logs.warnings()
	return inv, nil
}

// presentDatabases stats each database path. A path that does not exist is
// left out; one that exists but cannot be reached (a symlink out of the
// root, a permission error) is a skip, never a silent absence.
func presentDatabases(fsys scalibrfs.FS) ([]string, []Skip) {
	var paths []string
	var skips []Skip
	for _, p := range Databases {
		_, err := fs.Stat(fsys, p)
		switch {
		case err == nil:
			paths = append(paths, p)
		case errors.Is(err, fs.ErrNotExist) && !escapes(fsys, p):
		default:
			skips = append(skips, Skip{ReasonUnreadable, fmt.Sprintf("/%s: %v", p, err)})
		}
	}
	return paths, skips
}

// escapes reports a path that exists as a symlink whose target is out of
// reach: an os.Root refuses it, and the layer scanner drops it.
func escapes(fsys scalibrfs.FS, p string) bool {
	lfs, ok := fsys.(fs.ReadLinkFS)
	if !ok {
		return false
	}
	_, err := lfs.Lstat(p)
	return err == nil
}

// run runs the dpkg, apk and rpm extractors over the databases found.
func (e *Extractor) run(ctx context.Context, fsys scalibrfs.FS, paths []string) ([]Package, []Skip, error) {
	cfg := &cpb.PluginConfig{MaxFileSizeBytes: e.limits.MaxDatabaseSize}
	st := &collector{}
	var exts []filesystem.Extractor
	for _, build := range []func(*cpb.PluginConfig) (filesystem.Extractor, error){dpkg.New, apk.New, rpm.New} {
		x, err := build(cfg)
		if err != nil {
			return nil, nil, err
		}
		// Each extractor reports a database over the size cap only to its
		// own collector, not to the walk's.
		switch x := x.(type) {
		case *dpkg.Extractor:
			x.Stats = st
		case *apk.Extractor:
			x.Stats = st
		case *rpm.Extractor:
			x.Stats = st
		}
		exts = append(exts, x)
	}
	inv, statuses, err := filesystem.Run(ctx, &filesystem.Config{
		Extractors:     exts,
		ScanRoots:      []*scalibrfs.ScanRoot{{FS: fsys}},
		PathsToExtract: paths,
		Stats:          st,
	})
	if err != nil {
		return nil, nil, err
	}
	skips := st.skips()
	for _, s := range statuses {
		if s.Status != nil && s.Status.Status == plugin.ScanStatusFailed {
			skips = append(skips, Skip{ReasonExtract, s.Name + ": " + s.Status.FailureReason})
		}
	}
	pkgs := make([]Package, 0, len(inv.Packages))
	for _, p := range inv.Packages {
		pkgs = append(pkgs, convert(p))
	}
	return pkgs, skips, nil
}

func convert(p *extractor.Package) Package {
	out := Package{Name: p.Name, Version: p.Version, Ecosystem: osv.NormalizeEcosystem(p.Ecosystem().String())}
	switch m := p.Metadata.(type) {
	case *dpkgmeta.Metadata:
		if m.SourceName != "" && m.SourceName != p.Name {
			out.Source = m.SourceName
		}
		if m.SourceVersion != "" && m.SourceVersion != p.Version {
			out.SourceVersion = m.SourceVersion
		}
	case *apkmeta.Metadata:
		if m.OriginName != "" && m.OriginName != p.Name {
			out.Source = m.OriginName
		}
	case *rpmmeta.Metadata:
		if name := sourceRPMName(m.SourceRPM); name != "" && name != p.Name {
			out.Source = name
		}
	}
	return out
}

// sourceRPMName is the name part of "openssl-3.0.7-27.el9.src.rpm".
func sourceRPMName(srpm string) string {
	s := strings.TrimSuffix(srpm, ".src.rpm")
	for range 2 { // drop release, then version
		i := strings.LastIndexByte(s, '-')
		if i <= 0 {
			return ""
		}
		s = s[:i]
	}
	return s
}

// expectsDatabase reports an OS whose images normally carry a package
// database, so an image of it without one is worth saying so.
func expectsDatabase(release map[string]string) bool {
	ids := strings.Fields(release["ID"] + " " + release["ID_LIKE"])
	for _, id := range ids {
		switch strings.Trim(id, `"`) {
		case "debian", "ubuntu", "alpine", "wolfi", "chainguard", "rhel", "fedora", "centos", "rocky",
			"almalinux", "ol", "amzn", "suse", "opensuse", "sles", "mariner", "azurelinux":
			return true
		}
	}
	return false
}

// ecosystems are the OS ecosystems OSV publishes, and whether their
// records are per release: a package of them without a release, or of an
// OS OSV does not cover, cannot be matched.
var ecosystems = map[string]bool{"Debian": true, "Ubuntu": true, "Alpine": true, "AlmaLinux": true,
	"Red Hat": true, "SUSE": true, "openSUSE": true, "Mageia": true, "openEuler": true, "Azure Linux": true,
	"Alpaquita": true, "BellSoft Hardened Containers": true,
	"Rocky Linux": false, "Wolfi": false, "Chainguard": false, "MinimOS": false}

func unknownReleases(pkgs []Package) []Skip {
	n, example := 0, ""
	for _, p := range pkgs {
		perRelease, known := ecosystems[osv.Base(p.Ecosystem)]
		if !known || (perRelease && !strings.Contains(p.Ecosystem, ":")) {
			n++
			example = p.Ecosystem
		}
	}
	if n == 0 {
		return nil
	}
	return []Skip{{ReasonUnknownRelease, fmt.Sprintf("%d packages are of no OS release OSV covers (ecosystem %q: os-release missing or unknown), so no record can be matched to them", n, example)}}
}

func orID(inv Inventory) string {
	if inv.OS != "" {
		return inv.OS
	}
	return path.Base(inv.ID)
}
