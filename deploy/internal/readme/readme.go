// Package readme reads the install guides of the repository's README.md:
// its sections, their ```sh blocks and the exact commands in them, so that
// the tests can check what the README says and run exactly what it runs.
package readme

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Read returns the README.md of the repository at root.
func Read(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return "", fmt.Errorf("reading README.md: %w", err)
	}
	return string(b), nil
}

// Section returns the text under the heading line `heading` up to the next
// heading of the same or a higher level, or "" when there is no such heading.
func Section(doc, heading string) string {
	level := strings.Index(heading, " ")
	lines := strings.Split(doc, "\n")
	fence := false
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			fence = !fence
		}
		if fence {
			continue
		}
		if start < 0 {
			if l == heading {
				start = i + 1
			}
			continue
		}
		if n := strings.Index(l, " "); n > 0 && n <= level && strings.Trim(l[:n], "#") == "" {
			return strings.Join(lines[start:i], "\n")
		}
	}
	if start < 0 {
		return ""
	}
	return strings.Join(lines[start:], "\n")
}

var shBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// ShellBlocks returns the contents of the ```sh code blocks in text.
func ShellBlocks(text string) string {
	var b strings.Builder
	for _, m := range shBlock.FindAllStringSubmatch(text, -1) {
		b.WriteString(m[1])
	}
	return b.String()
}

// Command is one command line of a shell block.
type Command struct {
	Env  []string // VAR=value words before the command
	Args []string // the command and its arguments
}

// Find returns the first command in sh (a shell block's text) whose words,
// after any VAR=value prefixes, start with prefix. Lines continued with a
// backslash are one command, and a trailing # comment is not part of it.
// The command must be plain words: quoting, expansions, pipes and lists
// would make "run exactly what the README says" ambiguous, so they are an
// error.
func Find(sh string, prefix ...string) (Command, error) {
	for _, line := range logicalLines(sh) {
		words := strings.Fields(line)
		var env []string
		for len(words) > 0 && isAssignment(words[0]) {
			env, words = append(env, words[0]), words[1:]
		}
		if len(words) < len(prefix) || strings.Join(words[:len(prefix)], " ") != strings.Join(prefix, " ") {
			continue
		}
		if i := strings.IndexAny(line, "'\"`$|;&<>()*?\\"); i >= 0 {
			return Command{}, fmt.Errorf("README command %q has %q: only plain words can be run exactly as written", line, line[i])
		}
		return Command{Env: env, Args: words}, nil
	}
	return Command{}, fmt.Errorf("no sh block runs %q", strings.Join(prefix, " "))
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignment.MatchString(w) }

// logicalLines joins backslash-continued lines and drops comments.
func logicalLines(sh string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(sh, "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		} else if strings.HasPrefix(strings.TrimSpace(l), "#") {
			l = ""
		}
		l = strings.TrimRight(l, " \t")
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	return out
}
