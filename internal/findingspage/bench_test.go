package findingspage

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dockward/dockward/pkg/findings"
)

// bigStore holds n containers with four findings each, a busy host's worth.
func bigStore(b *testing.B, n int) *findings.Store {
	b.Helper()
	s := findings.NewStore(nil)
	sink := s.SourceSink("containers")
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%064x", i+1)
		sub := findings.ContainerSubject(id, fmt.Sprintf("/app-%d", i), "registry.example/app:1.2.3", nil)
		sink.Set(id, []findings.Finding{
			findings.New("container.no_memory_limit", sub, "HostConfig.Memory is 0"),
			findings.New("container.runs_as_root", sub, "Config.User is empty"),
			findings.New("container.writable_rootfs", sub, "ReadonlyRootfs is false"),
			findings.New("container.sensitive_mount", sub, "bind of /etc").With("source", "/etc"),
		})
	}
	return s
}

// BenchmarkFindingsPage renders the page for 1,000 containers (4,000
// findings); BenchmarkFindingsJSON encodes the same findings as the JSON API
// does, the baseline to compare it with.
func BenchmarkFindingsPage(b *testing.B) {
	h := Handler(bigStore(b, 1000))
	req := httptest.NewRequest(http.MethodGet, "/findings", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkFindingsJSON(b *testing.B) {
	s := bigStore(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		enc := json.NewEncoder(io.Discard)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.Open()); err != nil {
			b.Fatal(err)
		}
	}
}
