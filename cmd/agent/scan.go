package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
)

// runScan judges everything once with every enabled source and prints the
// open findings. It needs no HTTP server; metrics go to a throwaway registry.
func runScan(o options, stdout, stderr io.Writer) int {
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "dockward scan: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	cfg, err := loadConfig(o.configFile)
	if err != nil {
		fmt.Fprintf(stderr, "dockward scan: %v\n", err)
		return exitUsage
	}
	// The table is the output; transitions would only repeat it on stderr.
	store := findings.NewStore(zap.NewNop())
	store.ApplyPolicy(cfg.Policy)
	w := &wiring{log: log, reg: prometheus.NewRegistry(), store: store, dockerHost: o.dockerHost}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.scanTimeout)
	defer cancel()
	scanned, scanErr := scanSources(ctx, w, cfg)

	open := store.Open()
	if err := printScan(stdout, o.scanOutput, w, scanned, open); err != nil {
		fmt.Fprintf(stderr, "dockward scan: writing output: %v\n", err)
		return exitUsage
	}
	if scanErr != nil {
		fmt.Fprintf(stderr, "dockward scan: %v\n", scanErr)
		return exitUsage
	}
	code, err := scanExitCode(open, o.scanFailOn)
	if err != nil {
		fmt.Fprintf(stderr, "dockward scan: %v\n", err)
		return exitUsage
	}
	return code
}

// scanSources builds every enabled source and runs its Scan, one after the
// other (they share the Docker client and the host), collecting every error.
func scanSources(ctx context.Context, w *wiring, cfg Config) ([]string, error) {
	var scanned []string
	var errs []error
	for _, spec := range sourceSpecs {
		if !spec.enabled(cfg) {
			continue
		}
		src, _, err := buildSource(w, spec, cfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if src == nil {
			continue
		}
		if err := scanBounded(ctx, src); err != nil {
			errs = append(errs, fmt.Errorf("%s source scan: %w", spec.name, err))
			continue
		}
		scanned = append(scanned, spec.name)
	}
	return scanned, errors.Join(errs...)
}

// scanBounded runs src.Scan but returns when ctx ends even if the source
// does not, so a stuck source cannot hang a CI job: its findings so far are
// reported and the scan fails.
func scanBounded(ctx context.Context, src findings.Source) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic in Scan: %v", p)
			}
		}()
		done <- src.Scan(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("did not finish: %w (see --%s)", context.Cause(ctx), flagScanTimeout)
	}
}

// scanExitCode is 1 when a non-exempt finding is at least as severe as
// failOn ("none" never fails), else 0.
func scanExitCode(open []findings.Finding, failOn string) (int, error) {
	if failOn == "none" {
		return exitOK, nil
	}
	min, err := findings.ParseSeverity(failOn)
	if err != nil {
		return exitUsage, fmt.Errorf("--%s: %w", flagScanFailOn, err)
	}
	for _, f := range open {
		if !f.Exempt && f.Severity.AtLeast(min) {
			return exitFindings, nil
		}
	}
	return exitOK, nil
}

// printScan writes the findings, or for --output cis and cis-json the
// compliance report, in which only the sources that scanned count as judged.
func printScan(out io.Writer, format string, w *wiring, scanned []string, open []findings.Finding) error {
	if format != "cis" && format != "cis-json" {
		return printFindings(out, format, scanned, open)
	}
	done := map[string]bool{}
	for _, s := range scanned {
		done[s] = true
	}
	return printCompliance(out, format, w.compliance(func(s string) bool { return done[s] }))
}

// scanReport is the --output json document.
type scanReport struct {
	Sources  []string           `json:"sources"`
	Findings []findings.Finding `json:"findings"`
}

func printFindings(out io.Writer, format string, scanned []string, open []findings.Finding) error {
	if scanned == nil {
		scanned = []string{}
	}
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(scanReport{Sources: scanned, Findings: open})
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tRULE\tCIS\tKIND\tSUBJECT\tMESSAGE")
	counts := map[string]int{}
	for _, f := range open {
		sev := f.Severity.String()
		if f.Exempt {
			sev += " (exempt)"
			counts["exempt"]++
		} else {
			counts[f.Severity.String()]++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sev, f.Rule, f.CIS, f.Subject.Kind, f.Subject.Name, oneLine(f.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printVulnerabilities(out, open); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "\n%d open findings (%s) from sources: %s\n", len(open), summary(counts), listOrNone(scanned))
	return err
}

// printVulnerabilities lists the per-CVE detail of the findings that carry
// it (image.vulnerable, container.package_drift), one line per CVE and
// package, after the findings table.
func printVulnerabilities(out io.Writer, open []findings.Finding) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	n := 0
	for _, f := range open {
		for _, v := range f.Vulnerabilities.All() {
			if n == 0 {
				fmt.Fprintln(tw, "\nSUBJECT\tVULNERABILITY\tPACKAGE\tINSTALLED\tFIXED\tSEVERITY")
			}
			n++
			fixed := v.Fixed
			if fixed == "" {
				fixed = "(no fix)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Subject.Name, v.ID, v.Package, v.Installed, fixed, v.Severity)
		}
	}
	return tw.Flush()
}

func summary(counts map[string]int) string {
	order := []string{"critical", "high", "medium", "low", "info", "exempt"}
	var parts []string
	for _, k := range order {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none enabled"
	}
	s := append([]string{}, names...)
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
