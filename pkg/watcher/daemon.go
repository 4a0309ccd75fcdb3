package watcher

import (
	"context"
	"strings"

	"github.com/moby/moby/client"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
	"github.com/dockward/dockward/pkg/watcher/daemonjson"
)

// DockerAPI is the part of the Docker Engine client the watcher uses; the
// agent passes its shared *client.Client, tests a fake.
type DockerAPI interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	NetworkInspect(ctx context.Context, networkID string, options client.NetworkInspectOptions) (client.NetworkInspectResult, error)
}

const (
	defaultDaemonJSON = "/etc/docker/daemon.json"
	defaultContainerd = "/run/containerd/containerd.sock"
	bridgeICCOption   = "com.docker.network.bridge.enable_icc"
)

var daemonSubject = findings.DaemonSubject(findings.KindDaemon)

// daemonInputs is everything the daemon rules look at. Any part may be
// missing (Docker down, no daemon.json, /proc unreadable); each rule then
// falls back to the next source: /info, then the process's flags, then
// daemon.json, then dockerd's default.
type daemonInputs struct {
	info      *dockerinfo.Info
	bridgeICC *bool // the default bridge's effective enable_icc option

	proc         *hostfs.Dockerd
	flags        dockerdFlags
	tcpListeners []string

	configPath    string
	configPresent bool
	config        *daemonjson.Config // nil when absent or invalid
	configErr     error              // why dockerd would refuse daemon.json
	// configUnreadable: daemon.json exists but this process cannot read it.
	configUnreadable bool

	host hostFacts // the host-side facts (hostrules.go)
}

// setting is one effective value and where it came from, for the finding's
// evidence.
type setting[T any] struct {
	v    T
	from string
}

func (in *daemonInputs) boolSetting(flag string, file func(*daemonjson.Config) *bool, def bool) setting[bool] {
	if v, ok := in.flags.boolean(flag); ok {
		return setting[bool]{v, "flag --" + flag}
	}
	if in.config != nil {
		if p := file(in.config); p != nil {
			return setting[bool]{*p, in.configPath}
		}
	}
	return setting[bool]{def, "dockerd default"}
}

func (in *daemonInputs) stringSetting(flag string, file func(*daemonjson.Config) *string, def string) setting[string] {
	if v, ok := in.flags.last(flag); ok {
		return setting[string]{v, "flag --" + flag}
	}
	if in.config != nil {
		if p := file(in.config); p != nil {
			return setting[string]{*p, in.configPath}
		}
	}
	return setting[string]{def, "dockerd default"}
}

func (in *daemonInputs) listSetting(flag string, file func(*daemonjson.Config) []string) setting[[]string] {
	if v := in.flags[flag]; len(v) > 0 {
		return setting[[]string]{v, "flag --" + flag}
	}
	if in.config != nil {
		if v := file(in.config); len(v) > 0 {
			return setting[[]string]{v, in.configPath}
		}
	}
	return setting[[]string]{nil, "dockerd default"}
}

// hosts are the API endpoints dockerd is configured to serve.
func (in *daemonInputs) hosts() []string {
	return in.listSetting("host", func(c *daemonjson.Config) []string { return c.Hosts }).v
}

// unixSockets are the API's Unix socket paths (host paths).
func (in *daemonInputs) unixSockets() []string {
	var out []string
	for _, h := range in.hosts() {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			if p == "" {
				p = hostfs.DockerSocket
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = append(out, hostfs.DockerSocket)
	}
	return out
}

// tcpHosts are the configured TCP endpoints. dockerd reads "host:port"
// without a scheme as TCP.
func (in *daemonInputs) tcpHosts() []string {
	var out []string
	for _, h := range in.hosts() {
		switch {
		case strings.HasPrefix(h, "tcp://"):
			out = append(out, h)
		case strings.Contains(h, "://"):
		case strings.Contains(h, ":"):
			out = append(out, "tcp://"+h)
		}
	}
	return out
}

func (in *daemonInputs) tlsVerify() setting[bool] {
	s := in.boolSetting("tlsverify", func(c *daemonjson.Config) *bool { return c.TLSVerify }, false)
	if s.from == "dockerd default" && in.proc != nil && in.proc.Env["DOCKER_TLS_VERIFY"] != "" {
		return setting[bool]{true, "environment DOCKER_TLS_VERIFY"}
	}
	return s
}

// tlsFiles are the TLS CA, certificate and key the daemon uses, when TLS is on.
func (in *daemonInputs) tlsFiles() (ca, cert, key string) {
	tls := in.boolSetting("tls", func(c *daemonjson.Config) *bool { return c.TLS }, false).v
	if !tls && !in.tlsVerify().v {
		return "", "", ""
	}
	dir := "/root/.docker"
	if in.proc != nil && in.proc.Env["DOCKER_CERT_PATH"] != "" {
		dir = in.proc.Env["DOCKER_CERT_PATH"]
	}
	get := func(flag string, f func(*daemonjson.Config) *string, file string) string {
		return in.stringSetting(flag, f, dir+"/"+file).v
	}
	return get("tlscacert", func(c *daemonjson.Config) *string { return c.TLSCACert }, "ca.pem"),
		get("tlscert", func(c *daemonjson.Config) *string { return c.TLSCert }, "cert.pem"),
		get("tlskey", func(c *daemonjson.Config) *string { return c.TLSKey }, "key.pem")
}
