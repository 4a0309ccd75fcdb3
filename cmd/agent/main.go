// Command dockward is the host security agent for Docker: it judges
// containers, the daemon, Docker's files and the kernel audit of them
// against the CIS Docker Benchmark and serves the result as Prometheus
// metrics, JSON logs and an HTTP API. `dockward scan` judges once and exits.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
)

// Flag names, kept as constants so tests, docs and code agree. The web.*
// listen/config/systemd flags are registered by exporter-toolkit's
// kingpinflag under the same names.
const (
	flagListenAddress          = "web.listen-address"
	flagWebConfigFile          = "web.config.file"
	flagSystemdSocket          = "web.systemd-socket"
	flagTelemetryPath          = "web.telemetry-path"
	flagDisableExporterMetrics = "web.disable-exporter-metrics"
	flagConfigFile             = "config.file"
	flagLogLevel               = "log.level"
	flagLogFormat              = "log.format"
	flagDockerHost             = "docker.host"
	flagScanOutput             = "output"
	flagScanFailOn             = "fail-on"
	flagScanTimeout            = "timeout"

	defaultListenAddress = ":9917"
)

// Exit codes shared by the daemon and `dockward scan`.
const (
	exitOK       = 0
	exitFindings = 1 // scan: a finding at or above --fail-on
	exitFailure  = 1 // daemon: a failure at run time (port taken, unclean stop)
	exitUsage    = 2 // bad flags, bad config, or the command's own error
)

// options are the parsed command line.
type options struct {
	web                    *web.FlagConfig
	telemetryPath          string
	disableExporterMetrics bool
	configFile             string
	logLevel               string
	logFormat              string
	dockerHost             string

	scanOutput  string
	scanFailOn  string
	scanTimeout time.Duration
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run parses args and runs the chosen command, returning the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var o options
	app := kingpin.New("dockward", "Host security agent for Docker: CIS Docker Benchmark checks on containers, "+
		"daemon settings and Docker's files, plus kernel audit of them, served as Prometheus metrics and JSON logs.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Version(version.Print("dockward"))
	app.HelpFlag.Short('h')

	o.web = kingpinflag.AddFlags(app, defaultListenAddress)
	app.Flag(flagTelemetryPath, "Path under which to expose metrics.").Default("/metrics").StringVar(&o.telemetryPath)
	app.Flag(flagDisableExporterMetrics, "Exclude metrics about the exporter itself (go_*, process_*, promhttp_*).").
		BoolVar(&o.disableExporterMetrics)
	app.Flag(flagConfigFile, "Path to the YAML config file; built-in defaults apply when empty. Reloaded on SIGHUP.").
		Default("").StringVar(&o.configFile)
	app.Flag(flagLogLevel, "Only log messages with the given severity or above: debug, info, warn, error.").
		Default("info").EnumVar(&o.logLevel, "debug", "info", "warn", "error")
	app.Flag(flagLogFormat, "Log format: json or console.").Default("json").EnumVar(&o.logFormat, "json", "console")
	app.Flag(flagDockerHost, "Docker Engine API address (default: $DOCKER_HOST, else unix:///var/run/docker.sock).").
		Default("").StringVar(&o.dockerHost)

	daemonCmd := app.Command("run", "Run the agent: judge continuously and serve metrics (the default).").Default()
	scanCmd := app.Command("scan", "Judge everything once, print the open findings and exit "+
		"(0: none at or above --fail-on, 1: some, 2: error).")
	scanCmd.Flag(flagScanOutput, "Output format: table or json (the findings), cis or cis-json (the CIS compliance report).").
		Short('o').Default("table").EnumVar(&o.scanOutput, "table", "json", "cis", "cis-json")
	scanCmd.Flag(flagScanFailOn, "Exit 1 when a non-exempt finding is at least this severe: critical, high, medium, low, info, or none.").
		Default("high").EnumVar(&o.scanFailOn, "critical", "high", "medium", "low", "info", "none")
	scanCmd.Flag(flagScanTimeout, "Give up on sources that have not finished their scan after this long.").
		Default("2m").DurationVar(&o.scanTimeout)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "dockward: %v (try --help)\n", err)
		return exitUsage
	}
	switch cmd {
	case daemonCmd.FullCommand():
		return runDaemon(o, stderr)
	case scanCmd.FullCommand():
		return runScan(o, stdout, stderr)
	}
	fmt.Fprintf(stderr, "dockward: unknown command %q\n", cmd)
	return exitUsage
}
