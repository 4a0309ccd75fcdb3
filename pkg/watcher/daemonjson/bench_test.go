package daemonjson

import (
	"encoding/json"
	"testing"
)

const benchDoc = `{
  "data-root": "/var/lib/docker", "storage-driver": "overlay2", "mtu": 1400,
  "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
  "icc": false, "live-restore": true, "userland-proxy": false, "no-new-privileges": true,
  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
  "hosts": ["unix:///var/run/docker.sock"], "insecure-registries": [], "registry-mirrors": []
}`

// BenchmarkParse is the strict reader (syntax check, key positions, typed
// decode of the judged keys).
func BenchmarkParse(b *testing.B) {
	data := []byte(benchDoc)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibUnmarshal is the baseline: one lenient json.Unmarshal
// into a map, with no positions and no key checking.
func BenchmarkStdlibUnmarshal(b *testing.B) {
	data := []byte(benchDoc)
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}
