// Package findingspage renders the open findings as an HTML page served at
// /findings: a table colored and sorted by severity, filterable by kind with
// ?kind=container|daemon|file|audit|image, and, with ?view=cis, the CIS
// Docker Benchmark compliance report: every check by section with its status
// and the subjects that fail it. The page is one self-contained document:
// inline style, no script, and a Content-Security-Policy that forbids the
// browser to load anything, so it works on hosts without outside access and
// cannot leak which findings a host has.
package findingspage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

// kinds are the filter choices, in display order.
var kinds = findings.Kinds()

var severities = []findings.Severity{findings.Critical, findings.High, findings.Medium, findings.Low, findings.Info}

// style is inlined; its hash goes into the CSP so that nothing else, not even
// another inline style, is applied.
const style = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}
h1{font-size:1.4em;margin:0 0 .4em}
nav a{margin-right:.4em;padding:.2em .6em;border:1px solid #bbb;border-radius:1em;text-decoration:none;color:#1d1d1f}
nav a.active{background:#1d1d1f;color:#fff;border-color:#1d1d1f}
.summary span{display:inline-block;margin:.6em .4em .8em 0;padding:.2em .6em;border-radius:.3em;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f2f2f2;position:sticky;top:0}
td.sev{font-weight:700;text-transform:uppercase;white-space:nowrap}
.sev-critical{background:#b71c1c;color:#fff}
.sev-high{background:#f28b82}
.sev-medium{background:#fdd663}
.sev-low{background:#fff3c4}
.sev-info{background:#d2e3fc}
.sev-critical .details,.sev-critical .fix{color:#ffe4e1}
tr.exempt{background:#ececec;color:#555}
tr.exempt td.sev{text-decoration:line-through}
tr.exempt .details,tr.exempt .fix{color:#555}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95em}
.details{margin:0;padding:0;list-style:none;color:#444}
.fix{color:#444;font-size:.9em}
table.vulns{margin:.3em 0;font-size:.9em;background:#fff;color:#222}
.empty{padding:2em;text-align:center;color:#666}
footer{margin-top:1em;color:#666;font-size:.85em}
.views{margin:0 0 .8em}
h2{font-size:1.1em;margin:1.2em 0 .4em}
td.st{font-weight:700;text-transform:uppercase;white-space:nowrap}
.st-pass{background:#c8e6c9}
.st-fail{background:#f28b82}
.st-info{background:#d2e3fc}
.st-manual{background:#eeeeee}
.st-not_applicable{background:#f7f7f7;color:#555}
table.cis{table-layout:fixed}
table.cis th:nth-child(1){width:4.5em}
table.cis th:nth-child(2){width:9em}
`

// contentSecurityPolicy allows only the page's own inline style.
var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
}()

// maxVulnsShown bounds the per-CVE rows the page shows for one finding.
const maxVulnsShown = 200

var page = template.Must(template.New("findings").Funcs(template.FuncMap{
	"since": func(t time.Time, now time.Time) string {
		if t.IsZero() {
			return ""
		}
		return now.Sub(t).Truncate(time.Second).String() + " ago"
	},
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// shownVulns is the part of a per-CVE list the page shows; the API has
	// all of it (a host with a thousand images has hundreds of thousands).
	"shownVulns": func(l findings.VulnerabilityList) []findings.Vulnerability {
		all := l.All()
		return all[:min(len(all), maxVulnsShown)]
	},
	"moreVulns": func(l findings.VulnerabilityList) int { return max(0, l.Len()-maxVulnsShown) },
}).Parse(`{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dockward {{.Title}}</title>
<style>{{.Style}}</style></head>
<body>
{{- if .CISView}}
<nav class="views" aria-label="Views"><a href="?">findings</a> <a href="?view=cis" id="view-cis"{{if eq .Title "CIS compliance"}} class="active"{{end}}>CIS compliance</a></nav>
{{- end}}
{{end}}{{template "head" .}}
<h1>Open findings</h1>
<nav aria-label="Filter by kind">
<a href="?"{{if eq .Kind ""}} class="active"{{end}}>all ({{.Total}})</a>
{{- range .Kinds}}
<a href="?kind={{.Name}}"{{if .Active}} class="active"{{end}} id="kind-{{.Name}}">{{.Name}} ({{.Count}})</a>
{{- end}}
</nav>
<div class="summary" id="summary">
{{- range .Severities}}
<span class="sev-{{.Name}}" id="count-{{.Name}}">{{.Count}} {{.Name}}</span>
{{- end}}
</div>
{{if .Rows -}}
<table id="findings">
<thead><tr><th>Severity</th><th>Rule</th><th>CIS</th><th>Kind</th><th>Subject</th><th>Message</th><th>First seen</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr class="sev-{{.Severity}}{{if .Exempt}} exempt{{end}}" data-severity="{{.Severity}}" data-kind="{{.Subject.Kind}}">
<td class="sev">{{.Severity}}</td>
<td class="mono">{{.Rule}}</td>
<td>{{.CIS}}</td>
<td>{{.Subject.Kind}}</td>
<td><span class="mono">{{.Subject.Name}}</span>{{if .Subject.ContainerID}}<br><span class="mono">{{.Subject.ShortID}}</span>{{end}}{{if .Subject.Image}} <span class="mono">{{.Subject.Image}}</span>{{end}}</td>
<td>{{.Message}}{{if .Exempt}}<br><strong>exempt:</strong> {{.ExemptReason}}{{end}}
{{- if .Details}}<ul class="details">{{range $k, $v := .Details}}<li><span class="mono">{{$k}}</span>: {{$v}}</li>{{end}}</ul>{{end}}
{{- if .Vulnerabilities.Len}}<details class="vulns"><summary>{{.Vulnerabilities.Len}} vulnerabilities</summary><table class="vulns">
<thead><tr><th>Vulnerability</th><th>Package</th><th>Installed</th><th>Fixed</th><th>Severity</th></tr></thead><tbody>
{{- range shownVulns .Vulnerabilities}}
<tr class="vuln"><td class="mono">{{.ID}}</td><td class="mono">{{.Package}}</td><td class="mono">{{.Installed}}</td><td class="mono">{{if .Fixed}}{{.Fixed}}{{else}}no fix{{end}}</td><td>{{.Severity}}</td></tr>
{{- end}}
</tbody></table>{{with moreVulns .Vulnerabilities}}<div class="fix">and {{.}} more in <a href="api/v1/findings">api/v1/findings</a></div>{{end}}</details>{{end}}
{{- if .Remediation}}<div class="fix">Fix: {{.Remediation}}</div>{{end}}</td>
<td title="{{rfc3339 .FirstSeen}}">{{since .FirstSeen $.Now}}</td>
</tr>
{{- end}}
</tbody></table>
{{- else -}}
<p class="empty" id="no-findings">No open findings{{if .Kind}} of kind {{.Kind}}{{end}}.</p>
{{- end}}
<footer>Sorted by severity, then rule and subject. Exempt findings are greyed and not alerted on. JSON: <a href="api/v1/findings">api/v1/findings</a>.</footer>
</body></html>
{{define "cis"}}{{template "head" .}}
<h1>{{.Report.Benchmark}}</h1>
<div class="summary" id="cis-summary">
{{- range .Counts}}
<span class="st-{{.Name}}" id="cis-count-{{.Name}}">{{.Count}} {{.Name}}</span>
{{- end}}
<span id="cis-score">score {{.Report.Score}} of {{.Report.Checks}} checks</span>
</div>
{{- range .Report.Sections}}
<h2 id="section-{{.ID}}">{{.ID}} {{.Title}}</h2>
<table class="cis">
<thead><tr><th>Check</th><th>Status</th><th>Title</th><th>Failing subjects and notes</th></tr></thead>
<tbody>
{{- range .Checks}}
<tr class="st-{{.Status}}" data-check="{{.ID}}" data-status="{{.Status}}">
<td class="mono">{{.ID}}</td>
<td class="st">{{.Status}}</td>
<td>{{.Title}}{{if .Rules}}<div class="fix">{{range $i, $r := .Rules}}{{if $i}}, {{end}}<span class="mono">{{$r}}</span>{{end}}</div>{{end}}</td>
<td>{{if .Subjects}}<ul class="details">{{range .Subjects}}<li class="mono">{{.}}</li>{{end}}</ul>{{end}}{{if .Note}}<div class="fix">{{.Note}}</div>{{end}}</td>
</tr>
{{- end}}
</tbody></table>
{{- end}}
<footer>pass and fail as docker-bench-security scores them; the score is passed checks minus failed checks. JSON: <a href="api/v1/cis">api/v1/cis</a>.</footer>
</body></html>
{{end}}`))

type kindLink struct {
	Name   findings.Kind
	Count  int
	Active bool
}

type severityCount struct {
	Name  string
	Count int
}

type view struct {
	Style      template.CSS
	Title      string
	CISView    bool // the CIS view is available
	Kind       findings.Kind
	Total      int
	Kinds      []kindLink
	Severities []severityCount
	Rows       []findings.Finding
	Now        time.Time
}

// cisView is the ?view=cis page.
type cisView struct {
	Style   template.CSS
	Title   string
	CISView bool
	Report  findings.Compliance
	Counts  []severityCount
}

// Handler serves the page from the store's current open findings.
func Handler(store *findings.Store) http.Handler {
	return handler{open: store.Open, now: time.Now}
}

// HandlerWithCompliance serves the page and its CIS view, which shows
// report's result at each request.
func HandlerWithCompliance(store *findings.Store, report func() findings.Compliance) http.Handler {
	return handler{open: store.Open, now: time.Now, report: report}
}

type handler struct {
	open   func() []findings.Finding
	now    func() time.Time
	report func() findings.Compliance // nil: no CIS view
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the findings page is read-only", http.StatusMethodNotAllowed)
		return
	}
	var buf bytes.Buffer
	if status, err := h.render(&buf, r.URL.Query()); err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// render writes the view the query asks for, or returns the HTTP status
// and error to answer instead.
func (h handler) render(buf *bytes.Buffer, q url.Values) (int, error) {
	switch v := q.Get("view"); {
	case v == "cis" && h.report != nil:
		cv := cisView{Style: template.CSS(style), Title: "CIS compliance", CISView: true, Report: h.report()}
		for _, st := range findings.Statuses() {
			cv.Counts = append(cv.Counts, severityCount{Name: string(st), Count: cv.Report.Counts[st]})
		}
		if err := page.ExecuteTemplate(buf, "cis", cv); err != nil {
			return http.StatusInternalServerError, fmt.Errorf("rendering the CIS view: %w", err)
		}
		return http.StatusOK, nil
	case v != "" && v != "findings":
		choices := "findings"
		if h.report != nil {
			choices += ", cis"
		}
		return http.StatusBadRequest, fmt.Errorf("unknown view %q: use one of %s", v, choices)
	}
	kind, err := parseKind(q.Get("kind"))
	if err != nil {
		return http.StatusBadRequest, err
	}
	v := build(h.open(), kind, h.now())
	v.Title, v.CISView = "findings", h.report != nil
	if err := page.Execute(buf, v); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("rendering findings: %w", err)
	}
	return http.StatusOK, nil
}

func parseKind(v string) (findings.Kind, error) {
	if v == "" {
		return "", nil
	}
	for _, k := range kinds {
		if strings.EqualFold(v, string(k)) {
			return k, nil
		}
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown kind %q: use one of %s, or no kind for all", v, strings.Join(names, ", "))
}

// build filters and orders the findings for the template. The store already
// sorts by severity; sorting again keeps the page's promise independent of it.
func build(open []findings.Finding, kind findings.Kind, now time.Time) view {
	v := view{Style: template.CSS(style), Kind: kind, Total: len(open), Now: now}
	perKind := map[findings.Kind]int{}
	perSeverity := map[findings.Severity]int{}
	for _, f := range open {
		perKind[f.Subject.Kind]++
		if kind == "" || f.Subject.Kind == kind {
			v.Rows = append(v.Rows, f)
			if !f.Exempt {
				perSeverity[f.Severity]++
			}
		}
	}
	sort.SliceStable(v.Rows, func(i, j int) bool { return v.Rows[i].Severity < v.Rows[j].Severity })
	for _, k := range kinds {
		v.Kinds = append(v.Kinds, kindLink{Name: k, Count: perKind[k], Active: k == kind})
	}
	for _, s := range severities {
		v.Severities = append(v.Severities, severityCount{Name: s.String(), Count: perSeverity[s]})
	}
	return v
}
