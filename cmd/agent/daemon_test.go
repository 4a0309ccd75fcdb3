package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dockward/dockward/internal/testenv"
)

func TestHelpListsFlagsAndVersion(t *testing.T) {
	bin := testenv.AgentBinary(t)
	out := testenv.AgentOutput(t, "--help")
	for _, f := range []string{flagListenAddress, flagWebConfigFile, flagSystemdSocket, flagTelemetryPath,
		flagDisableExporterMetrics, flagConfigFile, flagLogLevel, flagLogFormat, flagDockerHost, "version"} {
		if !strings.Contains(out, "--"+f) && !strings.Contains(out, "--[no-]"+f) {
			t.Errorf("--help does not list --%s:\n%s", f, out)
		}
	}
	if out := testenv.AgentOutput(t, "--version"); !strings.Contains(out, testenv.AgentVersion) || !strings.Contains(out, testenv.AgentRevision) {
		t.Errorf("--version = %q, want version %s and revision %s from ldflags", out, testenv.AgentVersion, testenv.AgentRevision)
	}
	cmd := exec.Command(bin, "--no-such-flag")
	if err := cmd.Run(); exitCode(err) != exitUsage {
		t.Errorf("an unknown flag exits %d, want %d", exitCode(err), exitUsage)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestMalformedConfigExits2NamingTheLine(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bad.yml", "containers:\n  enabled: true\n  bogus: 1\n")
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg)
	if code := a.Wait(t, 5*time.Second); code != exitUsage {
		t.Fatalf("exit code %d, want %d", code, exitUsage)
	}
	if want := cfg + ":3: key containers.bogus: unknown key"; !strings.Contains(a.Logs.String(), want) {
		t.Errorf("output does not name the file, line and key (%q):\n%s", want, a.Logs.String())
	}
	// A bad web config is a config error too.
	web := writeFile(t, dir, "web.yml", "tls_server_config:\n  cert_file: /nonexistent.crt\n")
	b := testenv.StartAgent(t, nil, "--"+flagWebConfigFile+"="+web)
	if code := b.Wait(t, 5*time.Second); code != exitUsage {
		t.Fatalf("bad web config: exit code %d, want %d", code, exitUsage)
	}
}

func scrape(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, body := getUntil(t, client, url, time.Now().Add(5*time.Second))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, resp.StatusCode, body)
	}
	return string(body)
}

func TestEndpoints(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "off.yml", allSourcesOff)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg)
	base := "http://" + a.Addr
	if body := scrape(t, http.DefaultClient, base+"/"); !contains(body, `href="/metrics"`) || !contains(body, "api/v1/findings") ||
		!contains(body, "readyz") || !contains(body, "healthz") || !contains(body, testenv.AgentVersion) {
		t.Errorf("landing page lacks links or version:\n%s", body)
	}
	if body := scrape(t, http.DefaultClient, base+pathHealth); body != "ok\n" {
		t.Errorf("/healthz = %q", body)
	}
	if body := scrape(t, http.DefaultClient, base+pathReady); body != "ready\n" {
		t.Errorf("/readyz = %q with every source disabled, want ready", body)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(scrape(t, http.DefaultClient, base+pathFindingsAPI)), &list); err != nil || list == nil {
		t.Errorf("/api/v1/findings is not a JSON list: %v", err)
	}
	scrape(t, http.DefaultClient, base+pathFindings)
	// The exporter's own go_ and process_ collectors are on unless disabled.
	if body := scrape(t, http.DefaultClient, base+"/metrics"); !contains(body, "dockward_build_info{") ||
		!contains(body, "\ngo_goroutines ") || !contains(body, "\nprocess_resident_memory_bytes ") {
		t.Errorf("/metrics lacks dockward_build_info or the go/process collectors:\n%s", grepLines(body, "build_info", "go_goroutines", "process_resident"))
	}
	resp, err := http.Get(base + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}
}

func TestDisableExporterMetrics(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "off.yml", allSourcesOff)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg, "--"+flagDisableExporterMetrics, "--"+flagTelemetryPath+"=/m")
	body := scrape(t, http.DefaultClient, "http://"+a.Addr+"/m")
	if !contains(body, "dockward_build_info") {
		t.Fatalf("no dockward_build_info at /m:\n%s", body)
	}
	for _, p := range []string{"\ngo_", "\nprocess_", "\npromhttp_"} {
		if contains(body, p) {
			t.Errorf("--%s left %s* series", flagDisableExporterMetrics, strings.TrimSpace(p))
		}
	}
}

// A SIGHUP with a malformed file must leave the agent serving with the old
// config; a later good file must take effect.
func TestReloadRejectsMalformedConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "c.yml", allSourcesOff+"rules:\n  container.no_healthcheck:\n    severity: low\n")
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfgPath)
	url := "http://" + a.Addr + "/metrics"
	const lowSeries = `dockward_findings_opened_total{rule="container.no_healthcheck",severity="low"} 0`
	if body := scrape(t, http.DefaultClient, url); !contains(body, lowSeries) {
		t.Fatalf("initial config not in force; want %s", lowSeries)
	}

	writeFile(t, dir, "c.yml", allSourcesOff+"rules:\n  container.no_healthcheck:\n    severity: extreme\n")
	a.Signal(t, syscall.SIGHUP)
	testenv.WaitFor(t, 5*time.Second, "the reload failure to be counted", func() bool {
		return contains(scrape(t, http.DefaultClient, url), "dockward_config_reload_failures_total 1")
	})
	body := scrape(t, http.DefaultClient, url)
	if !contains(body, lowSeries) || !contains(body, "dockward_config_last_reload_successful 0") {
		t.Errorf("after a bad reload the old config must stay in force and the failure show:\n%s", grepLines(body, "no_healthcheck", "reload"))
	}
	if !contains(a.Logs.String(), "config reload rejected") || !contains(a.Logs.String(), "c.yml:9: key rules.container.no_healthcheck.severity") {
		t.Errorf("the rejected reload is not logged with file, line and key:\n%s", a.Logs.String())
	}

	writeFile(t, dir, "c.yml", allSourcesOff+"rules:\n  container.no_healthcheck:\n    severity: info\n")
	a.Signal(t, syscall.SIGHUP)
	testenv.WaitFor(t, 5*time.Second, "the good reload to take effect", func() bool {
		b := scrape(t, http.DefaultClient, url)
		return contains(b, `dockward_findings_opened_total{rule="container.no_healthcheck",severity="info"} 0`) &&
			contains(b, "dockward_config_last_reload_successful 1")
	})
	if a.Exited() {
		t.Fatal("the agent exited during reloads")
	}
}

// grepLines quotes the relevant lines of a log or a /metrics body.
var grepLines = testenv.GrepLines

func TestSIGTERMStopsWithin10s(t *testing.T) {
	t.Run("no sources", func(t *testing.T) {
		sigtermWithin10s(t, allSourcesOff)
	})
	// With a real source running (and its Docker event stream open), the
	// agent still waits for it to return and stops in time.
	t.Run("containers source", func(t *testing.T) {
		testenv.RequireDocker(t)
		sigtermWithin10s(t, "audit:\n  enabled: false\nhost:\n  enabled: false\n")
	})
}

func sigtermWithin10s(t *testing.T, config string) {
	cfg := writeFile(t, t.TempDir(), "c.yml", config)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg)
	testenv.WaitFor(t, 10*time.Second, "/readyz to answer 200", func() bool {
		resp, err := http.Get("http://" + a.Addr + pathReady)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	start := time.Now()
	a.Signal(t, syscall.SIGTERM)
	if code := a.Wait(t, stopTimeout); code != exitOK {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("stopped in %s", time.Since(start))
	if !contains(a.Logs.String(), `"msg":"stopped","source":"agent","clean":true`) {
		t.Errorf("no clean stop logged:\n%s", a.Logs.String())
	}
}

// sd_notify: READY once started, RELOADING/READY around a SIGHUP, WATCHDOG
// pings when systemd asks for them, STOPPING on SIGTERM, all sent to a
// unixgram socket standing in for systemd's NOTIFY_SOCKET.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatalf("creating the notify socket: %v", err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(want string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed while waiting for %q", want)
				}
				if m == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %q on NOTIFY_SOCKET within 5s", want)
			}
		}
	}
	cfg := writeFile(t, dir, "off.yml", allSourcesOff)
	a := testenv.StartAgent(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"}, "--"+flagConfigFile+"="+cfg)
	expect("READY=1")
	expect("WATCHDOG=1")
	a.Signal(t, syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	a.Signal(t, syscall.SIGTERM)
	expect("STOPPING=1")
	if code := a.Wait(t, stopTimeout); code != exitOK {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TLS and basic auth through --web.config.file, for real: a self-signed
// certificate and a bcrypt password.
func TestTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedCert(t)
	certFile := writeFile(t, dir, "tls.crt", string(certPEM))
	keyFile := writeFile(t, dir, "tls.key", string(keyPEM))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := writeFile(t, dir, "web.yml", "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\nbasic_auth_users:\n  prometheus: "+string(hash)+"\n")
	cfg := writeFile(t, dir, "off.yml", allSourcesOff)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg, "--"+flagWebConfigFile+"="+webCfg)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + a.Addr + "/metrics"

	get := func(user, pass string) (int, string) {
		t.Helper()
		var resp *http.Response
		testenv.WaitFor(t, 5*time.Second, "the TLS listener", func() bool {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			var err error
			resp, err = tlsClient.Do(req)
			return err == nil
		})
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code, _ := get("prometheus", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code, body := get("prometheus", "s3cret"); code != http.StatusOK || !contains(body, "dockward_build_info") {
		t.Errorf("right credentials: %d, want 200 with metrics", code)
	}

	// Plain HTTP to the TLS listener must not get metrics.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + a.Addr + "/metrics")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || contains(string(body), "dockward_build_info") {
			t.Errorf("plain HTTP to the TLS listener got %d:\n%s", resp.StatusCode, body)
		}
	}
	// And a TLS client that does not trust the certificate fails the handshake.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(url); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}

func selfSignedCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dockward test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// A taken port fails at once, before any source starts.
func TestPortInUseExits1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(testenv.AgentBinary(t), "--"+flagListenAddress+"="+l.Addr().String())
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != exitFailure || !strings.Contains(string(out), "address already in use") {
		t.Errorf("exit %d, want %d naming the address in use:\n%s", code, exitFailure, out)
	}
	if strings.Contains(string(out), "source starting") {
		t.Errorf("sources started although the port was taken:\n%s", out)
	}
}
