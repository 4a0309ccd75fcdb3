package osv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dockward/dockward/internal/osvtest"
)

const (
	bookworm   = "Debian:12"
	vulnerable = "3.0.11-1~deb12u1"
	patched    = "3.0.13-1~deb12u1"
)

func match(t *testing.T, queries []Query, records ...osvtest.Record) (map[Query][]Vuln, MatchStats) {
	t.Helper()
	path := osvtest.WriteZip(t, t.TempDir(), "Debian", records...)
	out, st, err := MatchZip(context.Background(), path, queries)
	if err != nil {
		t.Fatalf("MatchZip: %v", err)
	}
	return out, st
}

func openssl(version string) Query {
	return Query{Ecosystem: bookworm, Name: "openssl", Version: version}
}

func TestMatchFixedAndUnfixed(t *testing.T) {
	fixed := osvtest.New("DEBIAN-CVE-2024-0727").Upstream("CVE-2024-0727").Affects(bookworm, "openssl", patched)
	unfixed := osvtest.New("DEBIAN-CVE-2010-5298").Upstream("CVE-2010-5298").Affects(bookworm, "openssl", "")
	other := osvtest.New("DEBIAN-CVE-2023-0001").Upstream("CVE-2023-0001").Affects(bookworm, "curl", "7.88.1-10+deb12u5")
	out, st := match(t, []Query{openssl(vulnerable), openssl(patched)}, fixed, unfixed, other)

	got := out[openssl(vulnerable)]
	if len(got) != 2 {
		t.Fatalf("the vulnerable version matched %d records, want 2: %+v", len(got), got)
	}
	byID := map[string]Vuln{}
	for _, v := range got {
		byID[v.ID] = v
	}
	if v := byID["DEBIAN-CVE-2024-0727"]; v.Fixed != patched {
		t.Errorf("fixed record: Fixed = %q, want %q", v.Fixed, patched)
	}
	if v, ok := byID["DEBIAN-CVE-2010-5298"]; !ok || v.Fixed != "" {
		t.Errorf("unfixed record: %+v (present %v), want a match with no fixed version", v, ok)
	}
	// The patched version is past the fix but still inside the unfixed range.
	if p := out[openssl(patched)]; len(p) != 1 || p[0].ID != "DEBIAN-CVE-2010-5298" {
		t.Errorf("patched version matched %+v, want only the unfixed record", p)
	}
	if st.Records != 3 || st.Decoded != 2 {
		t.Errorf("stats = %+v, want 3 records read and only the 2 naming openssl decoded", st)
	}
}

func TestMatchIgnoresOtherReleasesAndWithdrawn(t *testing.T) {
	otherRelease := osvtest.New("DEBIAN-CVE-2024-1").Upstream("CVE-2024-1").Affects("Debian:11", "openssl", "")
	withdrawn := osvtest.New("DEBIAN-CVE-2024-2").Upstream("CVE-2024-2").Affects(bookworm, "openssl", "").Withdrawn()
	bare := osvtest.New("DEBIAN-CVE-2024-3").Upstream("CVE-2024-3").Affects("Debian", "openssl", "")
	out, _ := match(t, []Query{openssl(vulnerable)}, otherRelease, withdrawn, bare)
	got := out[openssl(vulnerable)]
	if len(got) != 1 || got[0].ID != "DEBIAN-CVE-2024-3" {
		t.Fatalf("matched %+v, want only the record for every release (not Debian:11's, not the withdrawn one)", got)
	}
}

func TestUbuntuLTSSuffixMatches(t *testing.T) {
	rec := osvtest.New("UBUNTU-CVE-2024-5").Upstream("CVE-2024-5").Ubuntu("medium").Affects("Ubuntu:22.04:LTS", "curl", "")
	q := Query{Ecosystem: "Ubuntu:22.04", Name: "curl", Version: "7.81.0-1ubuntu1.15"}
	path := osvtest.WriteZip(t, t.TempDir(), "Ubuntu", rec)
	out, _, err := MatchZip(context.Background(), path, []Query{q})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[q]; len(got) != 1 || got[0].Severity != Medium {
		t.Fatalf("matched %+v, want UBUNTU-CVE-2024-5 rated medium by its Ubuntu priority", got)
	}
}

func TestDSAAndCVERecordCountOnce(t *testing.T) {
	dsa := osvtest.New("DSA-5621-1").Aliases("CVE-2024-0727").Affects(bookworm, "openssl", patched)
	oldDSA := osvtest.New("DSA-5000-1").Related("CVE-2023-1111").Affects(bookworm, "openssl", patched)
	cve := osvtest.New("DEBIAN-CVE-2024-0727").Upstream("CVE-2024-0727").
		AffectsUrgency(bookworm, "openssl", patched, "low")
	cve2 := osvtest.New("DEBIAN-CVE-2023-1111").Upstream("CVE-2023-1111").Affects(bookworm, "openssl", patched)
	out, _ := match(t, []Query{openssl(vulnerable)}, dsa, oldDSA, cve, cve2)
	vulns := out[openssl(vulnerable)]
	if len(vulns) != 4 {
		t.Fatalf("matched %d records, want all 4", len(vulns))
	}
	cves := Group(bookworm, []Installed{{Name: "openssl", Binaries: []string{"libssl3", "openssl"}, Version: vulnerable, Vulns: vulns}})
	if len(cves) != 2 {
		t.Fatalf("grouped into %d vulnerabilities, want 2 (each CVE once): %+v", len(cves), cves)
	}
	for _, c := range cves {
		if len(c.Records) != 2 || !c.Fixable() || c.Fixed != patched {
			t.Errorf("%s: records %v fixed %q, want the DSA and the CVE record, fixed in %s", c.ID, c.Records, c.Fixed, patched)
		}
	}
}

func TestSeverityOrder(t *testing.T) {
	critical := "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" // 9.8
	cases := []struct {
		name string
		rec  osvtest.Record
		want Level
		unim bool
	}{
		{"a CVSS vector wins over the urgency", osvtest.New("R1").CVSS(critical).AffectsUrgency(bookworm, "openssl", "", "low"), Critical, false},
		{"CVSS v4", osvtest.New("R2").CVSS("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N").Affects(bookworm, "openssl", ""), Critical, false},
		{"CVSS v2", osvtest.New("R3").CVSS("AV:N/AC:L/Au:N/C:P/I:N/A:N").Affects(bookworm, "openssl", ""), Medium, false},
		{"Ubuntu priority without a vector", osvtest.New("R4").Ubuntu("high").AffectsUrgency(bookworm, "openssl", "", "low"), High, false},
		{"Debian urgency", osvtest.New("R5").AffectsUrgency(bookworm, "openssl", "", "medium**"), Medium, false},
		{"unimportant is flagged", osvtest.New("R6").CVSS(critical).AffectsUrgency(bookworm, "openssl", "", "unimportant"), Critical, true},
		{"not yet assigned is unknown", osvtest.New("R7").AffectsUrgency(bookworm, "openssl", "", "not yet assigned"), Unknown, false},
		{"a bad vector falls through", osvtest.New("R8").CVSS("CVSS:3.1/AV:bogus").AffectsUrgency(bookworm, "openssl", "", "high"), High, false},
	}
	for _, c := range cases {
		out, _ := match(t, []Query{openssl(vulnerable)}, c.rec)
		got := out[openssl(vulnerable)]
		if len(got) != 1 || got[0].Severity != c.want || got[0].Unimportant != c.unim {
			t.Errorf("%s: got %+v, want severity %s unimportant %v", c.name, got, c.want, c.unim)
		}
	}
}

func TestRangeEvents(t *testing.T) {
	lastAffected := osvtest.New("R-LA")
	lastAffected["affected"] = []any{map[string]any{
		"package": map[string]any{"ecosystem": bookworm, "name": "openssl"},
		"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
			map[string]any{"introduced": "3.0.0-1"}, map[string]any{"last_affected": "3.0.11-1~deb12u1"}}}},
	}}
	listed := osvtest.New("R-V")
	listed["affected"] = []any{map[string]any{
		"package": map[string]any{"ecosystem": bookworm, "name": "openssl"}, "versions": []any{"3.0.9-1"}}}
	badEvent := osvtest.New("R-BAD").Affects(bookworm, "openssl", "bogus:1.0-1")
	out, st := match(t, []Query{openssl(vulnerable), openssl(patched), openssl("3.0.9-1"), openssl("2.0-1")},
		lastAffected, listed, badEvent)
	want := map[string][]string{vulnerable: {"R-LA"}, patched: nil, "3.0.9-1": {"R-LA", "R-V"}, "2.0-1": nil}
	for version, ids := range want {
		var got []string
		for _, v := range out[openssl(version)] {
			got = append(got, v.ID)
		}
		if len(got) != len(ids) {
			t.Errorf("%s matched %v, want %v", version, got, ids)
		}
	}
	if st.BadVersions == 0 {
		t.Errorf("the unparsable fixed event was not counted: %+v", st)
	}
}

func TestMatchBadDatabase(t *testing.T) {
	dir := t.TempDir()
	notZip := filepath.Join(dir, "all.zip")
	if err := os.WriteFile(notZip, []byte("<html>not a zip</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{notZip, filepath.Join(dir, "missing.zip")} {
		if _, _, err := MatchZip(context.Background(), p, []Query{openssl(vulnerable)}); !errors.Is(err, ErrDatabase) {
			t.Errorf("%s: err = %v, want ErrDatabase", p, err)
		}
	}
}

func TestMatchSkipsBadEntries(t *testing.T) {
	good := osvtest.New("DEBIAN-CVE-2024-9").Upstream("CVE-2024-9").Affects(bookworm, "openssl", "")
	broken := osvtest.Record{"id": "", "affected": []any{map[string]any{"package": map[string]any{"name": "openssl"}}}}
	broken["id"] = "BROKEN"
	broken["affected"] = "not a list"
	out, st := match(t, []Query{openssl(vulnerable)}, good, broken)
	if len(out[openssl(vulnerable)]) != 1 || st.Invalid != 1 {
		t.Fatalf("matches %v stats %+v, want the good record and one invalid entry counted", out, st)
	}
}
