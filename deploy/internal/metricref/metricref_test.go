package metricref

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The design names stand in for the series the golden output may lack, so
// each must be a metric the agent's code really defines (or, like
// dockward_build_info, whose name a library builds, one the golden output
// has).
func TestDesignNamesAreDefinedInCode(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	defined := map[string]bool{}
	quoted := regexp.MustCompile(`"(dockward_[a-z0-9_]+)"`)
	for _, dir := range []string{"pkg", "cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range quoted.FindAllStringSubmatch(string(src), -1) {
				defined[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(filepath.Join(root, GoldenPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (dockward_[a-z0-9_]+) `).FindAllStringSubmatch(string(golden), -1) {
		defined[m[1]] = true
	}
	if len(defined) < 10 {
		t.Fatalf("found only %d metric names in the agent's code; the scan is broken", len(defined))
	}
	for _, m := range Design {
		if !defined[m] {
			t.Errorf("metricref lists %s, which no agent source defines", m)
		}
	}
}

func TestKnownReadsTheGoldenFile(t *testing.T) {
	known, haveGolden, err := Known(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if !haveGolden {
		t.Fatalf("%s not found", GoldenPath)
	}
	// dockward_build_info is in the design list too; this one is only in the golden file.
	if !known["dockward_config_last_reload_successful"] {
		t.Errorf("Known lacks dockward_config_last_reload_successful from %s", GoldenPath)
	}
}
