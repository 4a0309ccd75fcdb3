package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The rootfs is one top-level key, "/" by default, and the per-source keys
// of earlier releases are errors that name it.
func TestRootfsIsOneTopLevelKey(t *testing.T) {
	if cfg := defaultConfig(); cfg.RootFS != "/" || cfg.hostRoot().Dir() != "/" {
		t.Fatalf("default rootfs %q, want /", cfg.RootFS)
	}
	dir := t.TempDir()
	cfg, err := parseConfig("c.yml", []byte("rootfs: "+dir+"\n"))
	if err != nil || cfg.RootFS != dir || cfg.hostRoot().Dir() != dir {
		t.Fatalf("rootfs %s: %+v, %v", dir, cfg.RootFS, err)
	}
	_, err = parseConfig("old.yml", []byte("host:\n  enabled: true\n  rootfs: /host\naudit:\n  rootfs: /host\n"))
	for _, want := range []string{
		`old.yml:3: key host.rootfs: moved to the top-level "rootfs" key`,
		`old.yml:5: key audit.rootfs: moved to the top-level "rootfs" key`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("old per-source keys: error %v, want it to contain %q", err, want)
		}
	}
}

// rootfs must be an absolute path to a directory this process can read.
func TestRootfsMustBeAReadableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"relative/path":            `r.yml:2: key rootfs: "relative/path" must be an absolute path`,
		file:                       "r.yml:2: key rootfs: " + file + " is a regular file, not a directory",
		"/nonexistent-dockward-fs": "r.yml:2: key rootfs: /nonexistent-dockward-fs is not a readable directory",
	}
	for rootfs, want := range cases {
		_, err := parseConfig("r.yml", []byte("# the host's /\nrootfs: "+rootfs+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "<nil>") {
			t.Errorf("rootfs %s: error %v, want it to contain %q", rootfs, err, want)
		}
	}
}

// A reload that moves the rootfs restarts every source, since each one's
// view of the host moved.
func TestReloadRestartsSourcesWhenRootfsMoves(t *testing.T) {
	a, b := defaultConfig(), defaultConfig()
	b.RootFS = t.TempDir()
	for _, spec := range sourceSpecs {
		if !sourceChanged(spec, a, a) && sourceChanged(spec, a, b) {
			continue
		}
		t.Errorf("source %s: changed(a, a) = %v, changed(a, b) = %v; want a rootfs move to restart it",
			spec.name, sourceChanged(spec, a, a), sourceChanged(spec, a, b))
	}
}
