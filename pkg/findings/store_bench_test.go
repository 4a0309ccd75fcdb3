package findings

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// benchJudgements is a host with n containers and five findings each.
func benchJudgements(n int) [][]Finding {
	rules := []string{"container.no_memory_limit", "container.no_cpu_limit", "container.no_pids_limit",
		"container.writable_rootfs", "container.runs_as_root"}
	out := make([][]Finding, n)
	for i := range out {
		s := ContainerSubject(fmt.Sprintf("%064x", i), fmt.Sprintf("/c%d", i), "img:1", nil)
		for _, r := range rules {
			out[i] = append(out[i], New(r, s, "m"))
		}
	}
	return out
}

// Re-reporting an unchanged judgement is the steady state of every source
// (each rescan, each event); compare with BenchmarkStoreSetOpenResolve,
// where every Set is a transition that logs and counts.
func BenchmarkStoreSetUnchanged(b *testing.B) {
	s := NewStore(nil)
	sink := s.SourceSink("containers")
	j := benchJudgements(1000)
	for i, f := range j {
		sink.Set(fmt.Sprint(i), f)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(j)
		sink.Set(fmt.Sprint(k), j[k])
	}
}

func BenchmarkStoreSetOpenResolve(b *testing.B) {
	s := NewStore(nil)
	sink := s.SourceSink("containers")
	j := benchJudgements(1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(j)
		if (i/len(j))%2 == 0 {
			sink.Set(fmt.Sprint(k), j[k])
		} else {
			sink.Set(fmt.Sprint(k), nil)
		}
	}
}

// A scrape of 1000 containers with five open findings each.
func BenchmarkCollect5000Findings(b *testing.B) {
	s := NewStore(nil)
	sink := s.SourceSink("containers")
	for i, f := range benchJudgements(1000) {
		sink.Set(fmt.Sprint(i), f)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(s))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
