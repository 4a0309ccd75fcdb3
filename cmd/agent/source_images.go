package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images"
)

// vulnsSection is the top-level config section the images source reads
// besides its own: the OSV data it matches with (vulns.db.url, ...).
const vulnsSection = images.VulnsSection

// imagesSection is the images source's configuration: its own section with
// the vulns section set in, so a reload that changes either restarts it.
func imagesSection(c Config) images.Config {
	s := c.Images
	s.Vulns = c.Vulns
	return s
}

// buildImages builds the image vulnerability source from the `images:` and
// `vulns:` sections, on the agent's one Docker client.
func buildImages(w *wiring, cfg Config, b sourceBase) (findings.Source, error) {
	if !cfg.Images.Enabled {
		return nil, nil
	}
	docker, err := w.Docker()
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	section := imagesSection(cfg)
	if err := useTempDir(filepath.Join(section.CacheDir, "tmp")); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	src, err := images.New(section, images.Deps{
		Log:        b.log,
		Registerer: b.reg,
		Sink:       b.sink,
		Engine:     docker,
	})
	if err != nil {
		return nil, err
	}
	w.SetObserver(images.Name, src.Observations)
	return src, nil
}

// useTempDir points the process's temporary files at dir unless TMPDIR is
// set: osv-scalibr's layer scanner keeps an image's files in a temporary
// file with no way to choose where, and /tmp may be a tmpfs (RAM) or
// read-only (the container image), while the cache dir is on disk.
func useTempDir(dir string) error {
	if os.Getenv("TMPDIR") != "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the temporary directory: %w", err)
	}
	return os.Setenv("TMPDIR", dir)
}
