package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"

	"github.com/dockward/dockward/internal/findingspage"
	"github.com/dockward/dockward/pkg/findings"
)

// Paths served besides the telemetry path.
const (
	pathHealth      = "/healthz"
	pathReady       = "/readyz"
	pathFindingsAPI = "/api/v1/findings"
	pathCISAPI      = "/api/v1/cis"
	pathFindings    = "/findings"
)

// newHandler builds the HTTP routes. TLS and basic auth wrap it in
// exporter-toolkit's server, so every route is covered by them.
// compliance computes the CIS report at each request.
func newHandler(o options, reg *prometheus.Registry, store *findings.Store, ready *readiness,
	compliance func() findings.Compliance, log *zap.Logger) (http.Handler, error) {
	mux := http.NewServeMux()

	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(log.With(zap.String("source", "http"))),
		ErrorHandling: promhttp.ContinueOnError,
	})
	if !o.disableExporterMetrics {
		metrics = promhttp.InstrumentMetricHandler(reg, metrics)
	}
	mux.Handle(o.telemetryPath, metrics)

	mux.HandleFunc(pathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc(pathReady, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		body, ok := ready.report()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, body)
	})
	serveJSON := func(what string, v func() any) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(v()); err != nil {
				log.Debug("writing "+what+" response", zap.String("source", "http"), zap.Error(err))
			}
		}
	}
	mux.HandleFunc(pathFindingsAPI, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := writeFindings(w, store.Open()); err != nil {
			log.Debug("writing findings response", zap.String("source", "http"), zap.Error(err))
		}
	})
	mux.HandleFunc(pathCISAPI, serveJSON("CIS report", func() any { return compliance() }))
	mux.Handle(pathFindings, findingspage.HandlerWithCompliance(store, compliance))

	if o.telemetryPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "dockward",
			Description: "Host security agent for Docker (CIS Docker Benchmark, Docker file integrity, kernel audit)",
			Version:     version.Info(),
			Profiling:   "false", // no /debug/pprof handlers are served
			Links: []web.LandingLinks{
				{Address: o.telemetryPath, Text: "Metrics"},
				{Address: pathFindings, Text: "Findings", Description: "open findings as a page"},
				{Address: pathFindingsAPI, Text: "Findings API", Description: "open findings as JSON"},
				{Address: pathFindings + "?view=cis", Text: "CIS compliance", Description: "every CIS Docker Benchmark check with its status"},
				{Address: pathCISAPI, Text: "CIS API", Description: "the compliance report as JSON"},
				{Address: pathHealth, Text: "Health"},
				{Address: pathReady, Text: "Readiness", Description: "200 once every enabled source has started"},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("building the landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}

// writeFindings writes open as an indented JSON array one finding at a
// time, so the response is never held in memory whole: with per-CVE lists,
// a host of a thousand images answers hundreds of megabytes.
func writeFindings(w io.Writer, open []findings.Finding) error {
	if len(open) == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	sep := "[\n  "
	for _, f := range open {
		data, err := json.MarshalIndent(f, "  ", "  ")
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		sep = ",\n  "
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}
