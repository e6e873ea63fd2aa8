// Package layout holds the tests that keep Prism's package layout: which
// package may import which (docs/architecture.md), how long a hand-written
// file may grow, and how thin the command line stays. They read the tree
// with `go list` and the files themselves; nothing here is imported.
package layout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/prism-data/prism"

// rule says which Prism packages the packages under prefix may import
// (non-test code). An entry matches a package and everything below it;
// own allows the package's own subtree (a backend's test helpers).
type rule struct {
	prefix string
	allow  []string
	own    bool
	any    bool // may import every Prism package but those in deny
	deny   []string
}

// rules is the import graph of docs/architecture.md, lowest layer first.
// The first rule whose prefix matches a package applies.
var rules = []rule{
	{prefix: "proto"},
	{prefix: "internal/suggest"},
	{prefix: "internal/metrics"},
	{prefix: "internal/progress", allow: []string{"namespaces", "replay"}},
	{prefix: "internal/natsconn", allow: []string{"subjects"}},
	{prefix: "internal/sigv4test"},
	{prefix: "subjects", allow: []string{"proto"}},
	{prefix: "status", allow: []string{"proto", "subjects"}},
	{prefix: "auth/audit", allow: []string{"proto", "subjects", "status", "auth"}},
	{prefix: "auth/authn", allow: []string{"proto", "subjects", "status", "auth"}},
	{prefix: "auth/devinit", allow: []string{"proto", "subjects", "status", "auth", "auth/authn"}},
	{prefix: "auth", allow: []string{"proto", "subjects", "status", "internal/metrics"}},
	{prefix: "pii/kmstest", allow: []string{"proto", "subjects", "status", "internal/sigv4test"}},
	{prefix: "pii", allow: []string{"proto", "subjects", "status"}},
	{prefix: "client", allow: []string{"proto", "subjects"}},
	{prefix: "examples", allow: []string{"proto", "subjects", "client"}},
	{prefix: "backends/internal", allow: []string{"proto", "subjects", "backends/internal"}},
	{prefix: "backends/backendtest", allow: []string{"proto", "subjects", "backends/internal"}},
	// A stand-in of an AWS service (test support only) checks signatures
	// with the shared verifier.
	{prefix: "backends/neptune/neptunetest", allow: []string{"proto", "subjects", "backends/internal", "internal/sigv4test"}, own: true},
	{prefix: "backends/", allow: []string{"proto", "subjects", "backends/internal"}, own: true},
	{prefix: "namespaces", allow: []string{"proto", "subjects", "status", "auth", "pii", "internal/suggest"}},
	{prefix: "projectors", allow: []string{"proto", "subjects", "status", "internal/metrics"}},
	{prefix: "gateway", allow: []string{"proto", "subjects", "status", "auth", "namespaces", "pii", "internal/suggest"}},
	{prefix: "replay", allow: []string{"proto", "subjects", "status", "namespaces", "projectors", "backends/", "internal/metrics"}},
	{prefix: "node", any: true, deny: []string{"cmd", "bench", "itest"}},
	{prefix: "bench", any: true, deny: []string{"cmd", "itest"}},
	{prefix: "cmd", any: true, deny: []string{"itest"}},
	{prefix: "itest", any: true},
}

// under reports whether pkg is p or below it; a prefix ending in "/"
// matches only what is below it.
func under(pkg, p string) bool {
	if strings.HasSuffix(p, "/") {
		return strings.HasPrefix(pkg, p)
	}
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

func ruleFor(pkg string) (rule, bool) {
	for _, r := range rules {
		if under(pkg, r.prefix) {
			return r, true
		}
	}
	return rule{}, false
}

// allowed reports whether package pkg, under rule r, may import dep.
func (r rule) allowed(pkg, dep string) bool {
	if r.any {
		return !slices.ContainsFunc(r.deny, func(d string) bool { return under(dep, d) })
	}
	if r.own {
		// backends/sqlite and backends/postgres/pgtest: their own tree.
		top := strings.Join(strings.SplitN(pkg, "/", 3)[:2], "/")
		if under(dep, top) {
			return true
		}
	}
	return under(dep, pkg) || slices.ContainsFunc(r.allow, func(a string) bool { return under(dep, a) })
}

type listed struct {
	ImportPath string
	Imports    []string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestImportRules fails when a package imports a Prism package its layer
// may not (a backend reaching into the gateway, the control plane pulling
// in the data plane, anything importing the command line), or when a new
// package has no rule yet.
func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	n := 0
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkg := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if pkg == "internal/layout" {
			continue
		}
		n++
		r, ok := ruleFor(pkg)
		if !ok {
			t.Errorf("package %s has no import rule: add it to internal/layout and docs/architecture.md", pkg)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if !r.allowed(pkg, dep) {
				t.Errorf("%s imports %s: not allowed by the layout (docs/architecture.md)", pkg, dep)
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list found only %d packages", n)
	}
}

// TestRulesRefuse proves the rules are not vacuous: each of these imports
// must be refused.
func TestRulesRefuse(t *testing.T) {
	for _, c := range [][2]string{
		{"backends/sqlite", "gateway"},
		{"backends/sqlite", "backends/postgres"},
		{"backends/postgres/pgtest", "backends/sqlite"},
		{"gateway", "projectors"},
		{"projectors", "gateway"},
		{"projectors", "backends/sqlite"},
		{"namespaces", "gateway"},
		{"client", "gateway"},
		{"client", "namespaces"},
		{"subjects", "status"},
		{"replay", "gateway"},
		{"replay", "node"},
		{"node", "cmd/prism"},
		{"bench", "cmd/prism"},
		{"internal/natsconn", "namespaces"},
		{"internal/natsconn", "status"},
	} {
		r, ok := ruleFor(c[0])
		if !ok || r.allowed(c[0], c[1]) {
			t.Errorf("%s importing %s is allowed; the layout forbids it", c[0], c[1])
		}
	}
	for _, c := range [][2]string{
		{"backends/postgres/pgtest", "backends/postgres"},
		{"backends/sqlite", "backends/internal/kit"},
		{"gateway", "namespaces"},
		{"replay", "backends/sqlite"},
		{"node", "gateway"},
		{"cmd/prism", "node"},
		{"internal/natsconn", "subjects"},
	} {
		if r, _ := ruleFor(c[0]); !r.allowed(c[0], c[1]) {
			t.Errorf("%s importing %s is refused; the layout allows it", c[0], c[1])
		}
	}
}

// maxFileLines is the longest a hand-written Go file may grow (STYLE.md:
// split a file before it passes ~600 lines).
const maxFileLines = 600

// maxCLILines bounds cmd/prism's non-test code: commands, flags, help and
// output. The bound is issue #13's: under 1,500 lines. The runtime, bench,
// replay resolution and output, progress, admin text, audit printing and
// the NATS connection (internal/natsconn) live in their packages; long
// help points to docs/. It keeps the command line from growing back.
const maxCLILines = 1500

// TestFileSizes fails on a hand-written Go file over maxFileLines and on a
// command line that grew past maxCLILines (runtime code belongs in a
// package: node, bench, replay, namespaces).
func TestFileSizes(t *testing.T) {
	root := repoRoot(t)
	cli := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "prism-data" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		lines, generated, err := countLines(path)
		if err != nil || generated {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if lines > maxFileLines {
			t.Errorf("%s has %d lines, more than %d: split it by concern", rel, lines, maxFileLines)
		}
		if filepath.Dir(rel) == filepath.Join("cmd", "prism") && !strings.HasSuffix(rel, "_test.go") {
			cli += lines
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cli == 0 || cli > maxCLILines {
		t.Errorf("cmd/prism has %d non-test lines, want 1..%d: move runtime code into its package", cli, maxCLILines)
	}
}

// countLines counts a file's lines and reports whether it is generated
// (the "Code generated ... DO NOT EDIT." line of go generate's convention).
func countLines(path string) (int, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, generated := 0, false
	for sc.Scan() {
		n++
		if l := sc.Text(); strings.HasPrefix(l, "// Code generated ") && strings.HasSuffix(l, " DO NOT EDIT.") {
			generated = true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("%s: %w", path, err)
	}
	return n, generated, nil
}
