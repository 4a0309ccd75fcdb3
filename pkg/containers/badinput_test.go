package containers

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// awkward is unicode, quotes, a backslash and newlines: the characters that
// break naive log lines and metric exposition.
const awkward = "Zürich \"quoted\" 'single' \\back\nnew\u2028line ☃ {json}"

// TestFakeAwkwardNamesKeepMetricsAndLogsValid: a name and image full of
// awkward characters (only a fake server can produce such a name) end up in
// series labels and log lines, which must stay valid.
func TestFakeAwkwardNamesKeepMetricsAndLogsValid(t *testing.T) {
	f := newFakeEngine(t)
	c := fakeContainer(hexID(40), awkward)
	c.Config.Image = "img" + awkward
	c.Config.Labels = map[string]string{"k" + awkward: strings.Repeat("ä", 10000)}
	c.Config.Env = []string{"API_TOKEN=" + plantedSecret + awkward, "OTHER=" + awkward}
	f.put(c)
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	h.run(t)
	if h.rules(c.ID)["container.secret_in_env"] != "high" {
		t.Fatalf("secret not judged: %v", h.rules(c.ID))
	}
	text := h.metricsText(t) // fails unless it parses
	if !strings.Contains(text, `subject="Zürich \"quoted\"`) {
		t.Errorf("the awkward name is not escaped into the subject label as expected")
	}
	for _, l := range h.logs.lines(t) { // fails unless every line is JSON
		if l["msg"] == "finding opened" {
			ctr, _ := l["container"].(map[string]any)
			if ctr["name"] != strings.TrimPrefix(awkward, "/") {
				t.Errorf("log line lost the container name: %q", ctr["name"])
			}
		}
	}
	assertNoSecret(t, h, text)
}

// TestFakeInspectErrorCarriesNoSecret: an inspect response that does not
// decode (its env holds a secret) yields an error without the value.
func TestFakeInspectErrorCarriesNoSecret(t *testing.T) {
	f := newFakeEngine(t)
	id := hexID(41)
	f.override = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, "/containers/"+id+"/json"):
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"Id":"` + id + `","Config":{"Env":["DB_PASSWORD=` + plantedSecret + `"]},"HostConfig":"` + plantedSecret + `"}`))
		case strings.HasSuffix(r.URL.Path, "/containers/json"):
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`[{"Id":"` + id + `"},{"Id":"` + hexID(42) + `"}]`))
		default:
			return false
		}
		return true
	}
	f.start()
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	err := h.src.Scan(context.Background())
	if err == nil {
		t.Fatalf("Scan accepted an inspect that does not decode")
	}
	if strings.Contains(err.Error(), plantedSecret) {
		t.Fatalf("the error carries the secret value: %v", err)
	}
	if !strings.Contains(err.Error(), id[:12]) {
		t.Errorf("the error does not say which container failed: %v", err)
	}
	// Run carries on with the containers it can judge and logs the one it
	// cannot, without the value and without calling it an outage.
	other := fakeContainer(hexID(42), "fine")
	f.put(other)
	h.run(t)
	testenv.WaitFor(t, 5*time.Second, "the other container judged", func() bool { return h.findingCount(other.ID) > 0 })
	if n := h.logs.count("docker unreachable"); n != 0 {
		t.Errorf("one undecodable container was reported as an outage")
	}
	if n := h.logs.count("some containers could not be judged"); n != 2 {
		t.Errorf("the undecodable container was logged %d times, want 2 (Scan, then Run's inventory)", n)
	}
	assertNoSecret(t, h, h.metricsText(t))
}

func assertNoSecret(t *testing.T, h *harness, metrics string) {
	t.Helper()
	api, err := json.Marshal(h.store.Open())
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"logs": h.logs.String(), "metrics": metrics, "findings JSON": string(api)} {
		if strings.Contains(text, plantedSecret) {
			t.Errorf("the planted secret value leaked into %s", where)
		}
	}
}

// TestEngineAwkwardLabelsAndEnv: the real engine with labels and env values
// of unicode, quotes, newlines and a 10,000-character label.
func TestEngineAwkwardLabelsAndEnv(t *testing.T) {
	h, _, el := startBehindProxy(t)
	long := strings.Repeat("x\"é\n", 2500) // 10,000 characters
	id := dockerCreate(t, "--network", "none", "--label", "awkward="+awkward, "--label", "long="+long,
		"-e", "SERVICE_TOKEN="+plantedSecret+awkward, "-e", "NOTE="+awkward)
	testenv.WaitFor(t, 10*time.Second, "judged", func() bool { return h.rules(id)["container.secret_in_env"] == "high" })
	if el.count(id, "create") != 1 {
		t.Errorf("create event not handled once")
	}
	out, err := exec.Command("docker", "inspect", "--format", "{{len (index .Config.Labels \"long\")}}", id).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "12500" { // 10,000 characters, 12,500 bytes
		t.Fatalf("precondition: the engine kept the 10,000-character label: %s %v", out, err)
	}
	text := h.metricsText(t)
	h.logs.lines(t)
	assertNoSecret(t, h, text)
	testenv.Run(t, "docker", "rm", "-f", id)
	testenv.WaitFor(t, 10*time.Second, "removed", func() bool { return h.findingCount(id) == 0 })
}
