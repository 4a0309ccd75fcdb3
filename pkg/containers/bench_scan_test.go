package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockward/dockward/internal/testenv"
)

// scanSetSize is how many containers and images the scan benchmark judges.
const scanSetSize = 100

// scanRunning of the scan set's containers run, so their processes are
// judged too (GET /containers/{id}/top and /proc).
const scanRunning = 20

var (
	scanOnce                     sync.Once
	scanContainers, scanImageIDs []string
	scanImageRefs                []string
	scanErr                      error
)

// scanSet creates, once per test process, 100 containers (20 running) and
// imports 100 distinct images; TestMain removes them.
func scanSet(b *testing.B) (containers, images []string) {
	b.Helper()
	img := testenv.RequireBusyboxImage(b)
	scanOnce.Do(func() {
		c, err := client.New(client.WithHost("unix://" + testenv.DockerSocket()))
		if err != nil {
			scanErr = err
			return
		}
		defer c.Close()
		ctx := context.Background()
		start := time.Now()
		if scanImageRefs, scanImageIDs, scanErr = importImages(ctx, c, scanSetSize); scanErr != nil {
			return
		}
		scanContainers, scanErr = createScanContainers(ctx, c, img)
		fmt.Fprintf(os.Stderr, "created the scan set (%d containers, %d images) in %s\n", len(scanContainers), len(scanImageIDs),
			time.Since(start).Round(time.Millisecond))
	})
	if scanErr != nil {
		b.Fatalf("creating the scan benchmark's containers and images: %v", scanErr)
	}
	return scanContainers, scanImageIDs
}

func createScanContainers(ctx context.Context, c *client.Client, img string) ([]string, error) {
	ids := make([]string, 0, scanSetSize)
	for i := range scanSetSize {
		res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: img, Cmd: []string{"sleep", "600"}, Labels: map[string]string{"dockward.test": "1", benchLabel + ".scan": "1"}},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if err != nil {
			return ids, err
		}
		ids = append(ids, res.ID)
		if i < scanRunning {
			if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
				return ids, err
			}
		}
	}
	return ids, nil
}

// importImages imports n one-file images, each with its own content (so
// each is its own image), and returns their references and IDs.
func importImages(ctx context.Context, c *client.Client, n int) (refs, ids []string, err error) {
	for i := range n {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := fmt.Sprintf("dockward scan benchmark image %d\n", i)
		if err := tw.WriteHeader(&tar.Header{Name: "etc/dockward-bench", Mode: 0o644, Size: int64(len(body))}); err != nil {
			return refs, ids, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return refs, ids, err
		}
		if err := tw.Close(); err != nil {
			return refs, ids, err
		}
		ref := fmt.Sprintf("dockward-bench-image:%d", i)
		res, err := c.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref, client.ImageImportOptions{})
		if err != nil {
			return refs, ids, err
		}
		_, _ = io.Copy(io.Discard, res)
		res.Close()
		refs = append(refs, ref)
		inspect, err := c.ImageInspect(ctx, ref)
		if err != nil {
			return refs, ids, err
		}
		ids = append(ids, inspect.ID)
	}
	return refs, ids, nil
}

func removeScanSet() {
	if len(scanContainers) > 0 {
		if err := removeContainers(context.Background(), scanContainers); err != nil {
			fmt.Fprintln(os.Stderr, "removing the scan benchmark's containers:", err)
		}
	}
	if len(scanImageRefs) > 0 {
		args := append([]string{"rmi", "-f"}, scanImageRefs...)
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "removing the scan benchmark's images: %v: %s\n", err, out)
		}
	}
}

// BenchmarkScan100 is what `dockward scan` spends per container and per
// image: each of 100 containers (20 running: their processes are judged
// too) judged from its inspect, and each of 100 images from its inspect
// and history, one after the other, into the store. The baseline, measured
// in the same run, is one `docker inspect` CLI call; docker-bench-security
// makes about 37 such calls per container.
func BenchmarkScan100(b *testing.B) {
	ids, images := scanSet(b)
	testenv.RequireCommand(b, "docker")
	const baselineCalls = 20
	start := time.Now()
	for i := range baselineCalls {
		if out, err := exec.Command("docker", "inspect", ids[i%len(ids)]).CombinedOutput(); err != nil {
			b.Fatalf("docker inspect: %v: %s", err, out)
		}
	}
	baseline := time.Since(start) / baselineCalls

	h := newHarness(b, NewEngine(benchClient(b)), DefaultConfig(), nil)
	ctx := context.Background()
	if _, err := h.src.refreshHost(ctx); err != nil {
		b.Fatal(err)
	}
	var inContainers, inImages time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		for _, id := range ids {
			if err := h.src.judgeOne(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, id := range images {
			if _, _, err := h.src.judgeImage(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		inContainers, inImages = inContainers+t1.Sub(t0), inImages+time.Since(t1)
	}
	b.StopTimer()
	perContainer := inContainers / time.Duration(b.N*len(ids))
	perImage := inImages / time.Duration(b.N*len(images))
	b.ReportMetric(float64(perContainer.Microseconds())/1000, "ms/container")
	b.ReportMetric(float64(perImage.Microseconds())/1000, "ms/image")
	b.ReportMetric(float64(baseline.Microseconds())/1000, "baseline-cli-inspect-ms")
	b.ReportMetric(float64(baseline)/float64(perContainer), "container-x-cheaper-than-one-cli-inspect")
	b.ReportMetric(float64(baseline)/float64(perImage), "image-x-cheaper-than-one-cli-inspect")
	if h.findingCount(ids[0]) == 0 || len(h.imageRules(images[0])) == 0 {
		b.Fatalf("the judged containers or images have no findings")
	}
}
