package itest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// snippetMarker precedes a ```go block of the README that is copied from a
// compiled example: <!-- snippet: client/example_test.go#keyvalue -->.
var snippetMarker = regexp.MustCompile(`^<!-- snippet: (\S+)#(\S+) -->$`)

// TestReadmeSnippets checks that every Go block of the README is marked as
// copied from an example and is, line for line, the region of that example
// between "// snippet: NAME" and "// end snippet" (dedented), so the README
// prints only code that compiles.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	checked := 0
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```go" {
			continue
		}
		end := i + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		var m []string
		if i > 0 {
			m = snippetMarker.FindStringSubmatch(strings.TrimSpace(lines[i-1]))
		}
		if m == nil {
			t.Errorf("README.md:%d: a Go block without a <!-- snippet: FILE#NAME --> line above it", i+1)
			i = end
			continue
		}
		want := exampleRegion(t, m[1], m[2])
		got := strings.Join(lines[i+1:end], "\n")
		if got != want {
			t.Errorf("README.md:%d: the block differs from %s#%s; copy it again:\n%s", i+1, m[1], m[2], want)
		}
		checked++
		i = end
	}
	if checked < 5 {
		t.Fatalf("checked %d Go blocks of the README, want at least 5", checked)
	}
}

// exampleRegion returns the dedented lines between "// snippet: name" and
// "// end snippet" of the repository file path.
func exampleRegion(t *testing.T, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatalf("snippet source: %v", err)
	}
	var region []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "// snippet: "+name:
			in = true
		case in && trimmed == "// end snippet":
			return dedent(region)
		case in:
			region = append(region, l)
		}
	}
	t.Fatalf("%s has no complete region %q", path, name)
	return ""
}

// dedent removes the leading tabs common to every non-empty line.
func dedent(lines []string) string {
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "\t"))
		if common < 0 || n < common {
			common = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			l = l[common:]
		}
		out[i] = l
	}
	return strings.Join(out, "\n")
}
