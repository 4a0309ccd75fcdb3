package readme

import (
	"reflect"
	"strings"
	"testing"
)

const guide = "### Docker\n\nRun it:\n\n```sh\nmake image   # build\n" +
	"docker run -d --name x \\\n  --pid host \\\n  img:latest\ndocker logs -f x\n```\n\n" +
	"```sh\nIMAGE=a:b OTHER=1 \\\n  docker stack deploy -c s.yml x\ndocker run 'quoted' y\n```\n\n### Next\n\n```sh\ndocker run z\n```\n"

func TestFindJoinsContinuationsAndStripsComments(t *testing.T) {
	sh := ShellBlocks(Section(guide, "### Docker"))
	c, err := Find(sh, "docker", "run")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker", "run", "-d", "--name", "x", "--pid", "host", "img:latest"}; !reflect.DeepEqual(c.Args, want) || c.Env != nil {
		t.Errorf("docker run = %q env %q, want %q", c.Args, c.Env, want)
	}
	c, err = Find(sh, "make")
	if err != nil || !reflect.DeepEqual(c.Args, []string{"make", "image"}) {
		t.Errorf("make = %q %v, want the comment dropped", c.Args, err)
	}
	c, err = Find(sh, "docker", "stack", "deploy")
	if err != nil || !reflect.DeepEqual(c.Env, []string{"IMAGE=a:b", "OTHER=1"}) || c.Args[len(c.Args)-1] != "x" {
		t.Errorf("stack deploy = %+v %v", c, err)
	}
}

func TestFindRefusesWhatItCannotRunExactly(t *testing.T) {
	sh := "docker run 'quoted' y\n"
	if _, err := Find(sh, "docker", "run"); err == nil || !strings.Contains(err.Error(), "only plain words") {
		t.Errorf("a quoted command: %v, want an error", err)
	}
	if _, err := Find(ShellBlocks(Section(guide, "### Docker")), "docker", "rm"); err == nil {
		t.Error("a command the README does not have was found")
	}
	if got := Section(guide, "### Next"); !strings.Contains(got, "docker run z") || strings.Contains(got, "img:latest") {
		t.Errorf("section ### Next = %q", got)
	}
}
