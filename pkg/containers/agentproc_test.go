package containers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

var createdSeries = regexp.MustCompile(`(?m)^dockward_containers\{state="created"\} (\d+)`)

func runAgentUntilInventoried(b *testing.B, bin, cfg string, want int) (rss, hwm float64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--config.file="+cfg,
		"--docker.host=unix://"+testenv.DockerSocket(), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			b.Fatalf("the agent did not report %d created containers within 60s", want)
		}
		if n := scrapeCreated("http://" + addr + "/metrics"); n >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return procStatusOf(cmd.Process.Pid, "VmRSS"), procStatusOf(cmd.Process.Pid, "VmHWM")
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
