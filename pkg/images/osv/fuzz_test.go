package osv

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/osv-scalibr/semantic"

	"github.com/dockward/dockward/internal/osvtest"
)

// FuzzDecodeRecord feeds arbitrary bytes through everything a record from a
// downloaded zip reaches: the name pre-filter, the decoder, the CVE
// identities, the rating and the range evaluation. None of it may panic,
// and a record that decodes must name its ID among its identities or CVEs.
func FuzzDecodeRecord(f *testing.F) {
	seeds := []osvtest.Record{
		osvtest.New("DEBIAN-CVE-2024-0727").Upstream("CVE-2024-0727").AffectsUrgency(bookworm, "openssl", patched, "low**"),
		osvtest.New("DSA-5621-1").Related("CVE-2024-0727").CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").Affects(bookworm, "openssl", patched),
		osvtest.New("UBUNTU-CVE-2024-5").Ubuntu("negligible").Affects("Ubuntu:22.04:LTS", "curl", ""),
		osvtest.New("ALPINE-CVE-2024-6").CVSS("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N").Affects("Alpine:v3.19", "musl", "1.2.4-r3"),
		osvtest.New("W-1").Withdrawn().Affects(bookworm, "openssl", "bogus:1"),
	}
	for _, s := range seeds {
		data, _ := json.Marshal(s)
		f.Add(data, "3.0.11-1~deb12u1")
	}
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"Debian:12","name":"a"},"ecosystem_specific":"str","ranges":[{"type":"ECOSYSTEM","events":[{},{"fixed":"0"}]}]}]}`), "1")
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"Alpine:v3.19","name":"a"},"versions":[1,2]}]}`), "1.0-r0")
	f.Add([]byte(`[]`), "")
	f.Fuzz(func(t *testing.T, data []byte, installed string) {
		namesAny(data, func([]byte) bool { return true })
		r, err := DecodeRecord(data)
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error %v does not wrap ErrRecord", err)
			}
			return
		}
		if len(r.CVEs()) == 0 {
			t.Fatalf("record %q counts as no identity", r.ID)
		}
		for _, a := range r.Affected {
			rate(r, a)
			eco := Base(NormalizeEcosystem(a.Package.Ecosystem))
			if v, err := semantic.Parse(installed, eco); err == nil {
				affects(v, eco, a)
			}
		}
	})
}
