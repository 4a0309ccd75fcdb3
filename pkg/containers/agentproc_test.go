package containers

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

var createdSeries = regexp.MustCompile(`(?m)^dockward_containers\{state="created"\} (\d+)`)

// runAgentUntilInventoried runs the agent binary until its /metrics
// counts want created containers, and returns its VmRSS and VmHWM (kB)
// at that moment.
func runAgentUntilInventoried(b *testing.B, cfg string, want int) (rss, hwm float64) {
	a := testenv.StartAgent(b, nil, "--config.file="+cfg, "--docker.host=unix://"+testenv.DockerSocket(), "--log.level=warn")
	defer a.Stop()
	testenv.WaitFor(b, 60*time.Second, fmt.Sprintf("the agent to report %d created containers", want), func() bool {
		return scrapeCreated(a.URL("/metrics")) >= want
	})
	pid := a.Cmd.Process.Pid
	return procStatusOf(pid, "VmRSS"), procStatusOf(pid, "VmHWM")
}

func scrapeCreated(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := createdSeries.FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// procStatusOf reads a field (in kB) of /proc/PID/status.
func procStatusOf(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb
		}
	}
	return 0
}
