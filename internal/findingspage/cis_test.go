package findingspage

import (
	"image/color"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// fixtureCompliance judges the fixture store's findings, plus one that
// only informs its check (2.8), with every source but audit judged.
func fixtureCompliance(store *findings.Store) func() findings.Compliance {
	ulimits := findings.New("daemon.no_default_ulimits", findings.Subject{Kind: findings.KindDaemon, Name: "dockerd"},
		"no default ulimits")
	return func() findings.Compliance {
		return findings.Report(findings.ComplianceInput{
			Open:   append(store.Open(), ulimits),
			Judged: func(src string) bool { return src != "audit" },
		})
	}
}

var cisRowRe = regexp.MustCompile(`<tr class="st-(\w+)" data-check="([0-9.]+)" data-status="(\w+)">`)

// cisRows maps each check shown to its status.
func cisRows(body string) map[string]string {
	out := map[string]string{}
	for _, m := range cisRowRe.FindAllStringSubmatch(body, -1) {
		out[m[2]] = m[3]
	}
	return out
}

// cisCellOf returns the markup of one check's row.
func cisCellOf(body, check string) string {
	i := strings.Index(body, `data-check="`+check+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</tr>")
	return body[i : i+j]
}

func TestCISViewListsEveryCheckWithItsStatus(t *testing.T) {
	store := fixtureStore(t)
	h := HandlerWithCompliance(store, fixtureCompliance(store))
	resp, body := get(t, h, "/findings?view=cis")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	rows := cisRows(body)
	if len(rows) != 117 {
		t.Fatalf("the CIS view shows %d checks, want 117", len(rows))
	}
	want := map[string]string{"5.5": "fail", "2.7": "fail", "5.6": "fail", "5.16": "pass", "1.1.6": "manual",
		"4.2": "manual", "2.8": "info"}
	for id, st := range want {
		if rows[id] != st {
			t.Errorf("check %s shows %q, want %q", id, rows[id], st)
		}
	}
	// The privileged ci-runner is exempt: 5.5 fails for web alone.
	if cell := cisCellOf(body, "5.5"); !strings.Contains(cell, "container web") || strings.Contains(cell, `<li class="mono">container ci-runner`) {
		t.Errorf("5.5 does not list exactly its failing subject web:\n%s", cell)
	}
	if !strings.Contains(cisCellOf(body, "4.2"), "organisational decision") {
		t.Error("the manual check 4.2 does not say why it is manual")
	}
	if !strings.Contains(body, `id="cis-score">score `) || !strings.Contains(body, `id="cis-count-fail">`) {
		t.Error("the CIS view has no score or status counts")
	}
	if strings.Count(body, `<h2 id="section-`) != 7 {
		t.Error("the CIS view is not grouped in the benchmark's 7 sections")
	}
	// The findings view links the CIS view; without a report there is none.
	if _, body := get(t, h, "/findings"); !strings.Contains(body, `href="?view=cis"`) {
		t.Error("the findings view does not link the CIS view")
	}
	if resp, _ := get(t, Handler(store), "/findings?view=cis"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("?view=cis without a report: status %d, want 400", resp.StatusCode)
	}
	if resp, body := get(t, h, "/findings?view=bogus"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "findings, cis") {
		t.Errorf("?view=bogus: status %d %q, want 400 naming the views", resp.StatusCode, body)
	}
}

func TestChromiumRendersCISView(t *testing.T) {
	store := fixtureStore(t)
	srv := httptest.NewServer(HandlerWithCompliance(store, fixtureCompliance(store)))
	defer srv.Close()
	dom := string(testenv.Chromium(t, "--dump-dom", srv.URL+"/findings?view=cis"))
	rows := cisRows(dom)
	if len(rows) != 117 || rows["5.5"] != "fail" || rows["5.16"] != "pass" || rows["2.8"] != "info" {
		t.Fatalf("Chromium's DOM shows %d checks (5.5 %q, 5.16 %q, 2.8 %q), want 117 with fail, pass, info",
			len(rows), rows["5.5"], rows["5.16"], rows["2.8"])
	}
	requireColors(t, srv.URL+"/findings?view=cis", "1400,3000", "findings-cis.png", map[string]color.RGBA{
		"pass": {0xc8, 0xe6, 0xc9, 0xff},
		"fail": {0xf2, 0x8b, 0x82, 0xff},
	})
}
