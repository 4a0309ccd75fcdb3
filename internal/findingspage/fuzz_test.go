package findingspage

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzFindingsPageQuery: whatever the query string, the page answers 200
// with the table or 400 naming the bad kind; it never panics or echoes the
// input unescaped.
func FuzzFindingsPageQuery(f *testing.F) {
	for _, seed := range []string{"", "kind=container", "kind=DAEMON", "kind=", "kind=volume",
		"kind=<script>", "kind=container&kind=file", "kind=%ff%fe", "x=1&kind=audit"} {
		f.Add(seed)
	}
	h := Handler(fixtureStore(f))
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/findings", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if !strings.Contains(rec.Body.String(), "<h1>Open findings</h1>") {
				t.Fatalf("200 without the page for %q", rawQuery)
			}
		case http.StatusBadRequest:
			kind := ""
			if q, err := url.ParseQuery(rawQuery); err == nil {
				kind = q.Get("kind")
			}
			if strings.ContainsAny(kind, "<>") && strings.Contains(rec.Body.String(), kind) &&
				rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("400 echoes %q as HTML", kind)
			}
		default:
			t.Fatalf("status %d for query %q", rec.Code, rawQuery)
		}
	})
}
