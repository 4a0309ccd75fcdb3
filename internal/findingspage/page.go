// Package findingspage renders the open findings as an HTML page served at
// /findings. It loads nothing from outside the agent.
package findingspage

import (
	"html/template"
	"net/http"

	"github.com/dockward/dockward/pkg/findings"
)

var page = template.Must(template.New("findings").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>dockward findings</title></head>
<body><h1>Open findings</h1>
<table><thead><tr><th>Severity</th><th>Rule</th><th>CIS</th><th>Kind</th><th>Subject</th><th>Message</th></tr></thead>
<tbody>{{range .}}<tr><td>{{.Severity}}</td><td>{{.Rule}}</td><td>{{.CIS}}</td><td>{{.Subject.Kind}}</td><td>{{.Subject.Name}}</td><td>{{.Message}}</td></tr>
{{end}}</tbody></table></body></html>`))

// Handler serves the page from the store's current open findings.
func Handler(store *findings.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, store.Open()); err != nil {
			http.Error(w, "rendering findings: "+err.Error(), http.StatusInternalServerError)
		}
	})
}
