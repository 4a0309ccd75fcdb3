package rules

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRuleBuildDecodeCoverage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(dir, "a b")
	for _, w := range []Watch{{Path: dir, Key: "docker_etc"}, {Path: file, Key: "docker_daemon_json"}, {Path: spaced, Key: "x"}} {
		wire, err := Build(w)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Decode(wire)
		if err != nil {
			t.Fatal(err)
		}
		if r.Path != w.Path || r.Dir != (w.Path == dir) || r.Perm != permWrite|permAttr || !r.HasKey(w.Key) || r.Restricted || !r.AllSyscalls {
			t.Errorf("%s: decoded %+v", w.Path, r)
		}
		if !r.BuiltFor(w) || !r.Covers(w.Path) {
			t.Errorf("%s: own rule not recognised or not covering", w.Path)
		}
	}
	dirRule, _ := Decode(mustBuild(t, Watch{Path: dir, Key: "k"}))
	fileRule, _ := Decode(mustBuild(t, Watch{Path: file, Key: "k"}))
	if !dirRule.Covers(file) || !dirRule.Covers(dir) {
		t.Error("a dir= rule must cover its directory and what is in it")
	}
	if fileRule.Covers(dir) || fileRule.Covers(file+".bak") {
		t.Error("a path= rule covers only its path")
	}
	readOnly := fileRule
	readOnly.Perm = 4 // -p r
	if readOnly.Covers(file) {
		t.Error("a read-only rule does not audit writes")
	}
	restricted := fileRule
	restricted.Restricted = true
	if restricted.Covers(file) {
		t.Error("a rule limited to some processes does not cover the path")
	}
	cov := CheckCoverage([]Watch{{Path: file}, {Path: "/elsewhere"}}, []Rule{dirRule},
		func(p string) bool { return p == file })
	if !cov[0].Covered || cov[0].ByKey != "k" || cov[1].Covered || cov[1].Exists {
		t.Errorf("coverage = %+v", cov)
	}
	for _, bad := range [][]byte{nil, make([]byte, 100), append(make([]byte, ruleHeaderBytes-4), 0xff, 0xff, 0, 0)} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode accepted %d malformed bytes", len(bad))
		}
	}
}

func mustBuild(t *testing.T, w Watch) []byte {
	t.Helper()
	b, err := Build(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
