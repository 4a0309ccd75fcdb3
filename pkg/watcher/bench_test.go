package watcher

import (
	"bytes"
	"testing"
)

// benchHost is a host with Docker's five binaries at 8 MiB each (real ones
// are 6-50 MiB) and dpkg sums for them.
func benchHost(b *testing.B) *harness {
	tr := newTree(b).minimalHost()
	blob := bytes.Repeat([]byte("dockward"), 1<<20)
	var sums string
	for _, p := range []string{"/usr/sbin/dockerd", "/usr/bin/docker", "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc"} {
		tr.write(p, 0o755, string(blob)+p)
		sums += md5hex(string(blob)+p) + "  " + p[1:] + "\n"
	}
	tr.write("/var/lib/dpkg/info/docker.io.md5sums", 0o644, sums)
	h := newHarness(b, tr, nil)
	h.src.s.scan(b.Context())
	if len(h.src.s.baseline.get().Binaries) != 5 {
		b.Fatalf("baseline has %d binaries, want 5", len(h.src.s.baseline.get().Binaries))
	}
	return h
}

// BenchmarkRescanUnchanged is the periodic rescan of an unchanged host:
// binaries whose stat state is unchanged are not read again.
func BenchmarkRescanUnchanged(b *testing.B) {
	h := benchHost(b)
	b.ReportAllocs()
	for b.Loop() {
		h.src.s.scan(b.Context())
	}
}

// BenchmarkRescanRehashing is the baseline for BenchmarkRescanUnchanged:
// the same rescan re-reading and hashing every binary.
func BenchmarkRescanRehashing(b *testing.B) {
	h := benchHost(b)
	b.ReportAllocs()
	for b.Loop() {
		clear(h.src.s.hashes.byPath)
		h.src.s.scan(b.Context())
	}
}
