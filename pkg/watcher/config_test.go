package watcher

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if c.RescanInterval != 5*time.Minute || c.StateDir != "/var/lib/dockward" {
		t.Errorf("defaults changed: %+v", c)
	}
}

func TestConfigValidateNamesEveryBadKey(t *testing.T) {
	c := DefaultConfig()
	c.StateDir = "state"
	c.RescanInterval = 10 * time.Millisecond
	c.Debounce = time.Minute
	c.BinaryDirs = []string{"bin"}
	c.ExtraFiles = []ExtraFile{{Path: "/etc/x", Mode: "0999"}, {Path: "etc/y"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, key := range []string{"state_dir:", "rescan_interval:", "debounce:", "binary_dirs[0]:", "extra_files[0]: mode:", "extra_files[1]: path:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}
