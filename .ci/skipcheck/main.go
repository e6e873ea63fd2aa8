// Command skipcheck reads the output of `go test -json` on its standard
// input and fails CI on a skipped test that no one allowed to skip.
//
// It prints what `go test` prints without -json (the package lines, build
// errors and the output of failed tests), then every skipped test with the
// reason it gave. It exits 1 when a build or a test failed, when a test
// skipped that the allow list does not name, when the input holds no test
// event at all (go test did not run), and with -want-tests when a package
// ran no test (a -run pattern that matches nothing any more).
//
// Usage:
//
//	go test -json ./... | go run ./.ci/skipcheck [-allow FILE] [-want-tests]
//
// FILE has one allowed skip a line: the package (its import path, or the
// end of it after a slash), the test name (a subtest with its slashes),
// and why the test may skip in CI. A # starts a comment; blank lines are
// ignored. Without -allow no skip is allowed.
//
//	backends/natskv TestStandaloneServer  the machine's nats-server is 2.9: ...
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	allowPath := flag.String("allow", "", "file of the skips allowed (none when empty)")
	wantTests := flag.Bool("want-tests", false, "fail when a package ran no test")
	flag.Parse()
	var allow []Allowed
	if *allowPath != "" {
		f, err := os.Open(*allowPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "skipcheck:", err)
			os.Exit(2)
		}
		allow, err = ParseAllowed(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "skipcheck: %s: %v\n", *allowPath, err)
			os.Exit(2)
		}
	}
	rep, err := Read(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck:", err)
		os.Exit(2)
	}
	if problems := rep.Check(os.Stdout, allow, *wantTests); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "skipcheck:", p)
		}
		os.Exit(1)
	}
}

// Allowed is one line of the allow list.
type Allowed struct {
	Package string // import path, or its end after a slash
	Test    string
	Why     string
	Line    int
}

// matches reports whether the entry names test in package pkg.
func (a Allowed) matches(pkg, test string) bool {
	return test == a.Test && (pkg == a.Package || strings.HasSuffix(pkg, "/"+a.Package))
}

// ParseAllowed reads an allow list. Each entry needs a package, a test and
// a reason.
func ParseAllowed(r io.Reader) ([]Allowed, error) {
	var out []Allowed
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 3 {
			return nil, fmt.Errorf("line %d: want a package, a test and why it may skip, got %q", n, strings.TrimSpace(line))
		}
		out = append(out, Allowed{Package: fields[0], Test: fields[1], Why: strings.Join(fields[2:], " "), Line: n})
	}
	return out, sc.Err()
}

// event is one line of `go test -json`: a test event, or (Go 1.24+) a
// build event, which carries ImportPath instead of Package.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string
	FailedBuild string
}

// Skip is a skipped test and the output it gave as reason.
type Skip struct {
	Package, Test, Reason string
}

// Report is what Read found in the stream.
type Report struct {
	Events int      // events read
	Failed []string // failed packages and tests, as "pkg" or "pkg Test"
	Skips  []Skip
	// Ran counts the tests that ran (passed, failed or skipped) in each
	// package that has tests.
	Ran map[string]int
}

// Read reads a `go test -json` stream from in and writes to out what `go
// test` would print without -json.
func Read(in io.Reader, out io.Writer) (*Report, error) {
	rep := &Report{Ran: map[string]int{}}
	// Output of each running test, by package then test; a test's output
	// is printed if it fails, kept as reason if it skips.
	running := map[string]map[string]*strings.Builder{}
	buf := func(pkg, test string) *strings.Builder {
		if running[pkg] == nil {
			running[pkg] = map[string]*strings.Builder{}
		}
		b := running[pkg][test]
		if b == nil {
			b = &strings.Builder{}
			running[pkg][test] = b
		}
		return b
	}
	dec := json.NewDecoder(in)
	for {
		var e event
		if err := dec.Decode(&e); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go test -json: %w", err)
		}
		rep.Events++
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" {
				fmt.Fprint(out, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			rep.Failed = append(rep.Failed, e.Package)
			// A test still running when its package failed (a panic, a
			// timeout) has no end event: print what it said.
			for _, test := range sortedKeys(running[e.Package]) {
				fmt.Fprint(out, running[e.Package][test].String())
			}
			delete(running, e.Package)
		case e.Test == "" && e.Action == "pass":
			rep.Ran[e.Package] += 0 // a package with tests, maybe none run
			delete(running, e.Package)
		case e.Test == "":
			// start, or skip: a package without test files.
		case e.Action == "output":
			buf(e.Package, e.Test).WriteString(e.Output)
		case e.Action == "pass", e.Action == "fail", e.Action == "skip":
			rep.Ran[e.Package]++
			text := buf(e.Package, e.Test).String()
			delete(running[e.Package], e.Test)
			switch e.Action {
			case "fail":
				rep.Failed = append(rep.Failed, e.Package+" "+e.Test)
				fmt.Fprint(out, text)
			case "skip":
				rep.Skips = append(rep.Skips, Skip{Package: e.Package, Test: e.Test, Reason: reason(text)})
			}
		}
	}
	return rep, nil
}

// reason is the output of a skipped test without the lines go test adds
// (=== RUN, --- SKIP, …): the message given to t.Skip and what was logged
// before it.
func reason(output string) string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, " / ")
}

// Check writes the list of skips to out, each with its reason and whether
// it is allowed, and returns what makes the run fail.
func (r *Report) Check(out io.Writer, allow []Allowed, wantTests bool) []string {
	var problems []string
	if r.Events == 0 {
		problems = append(problems, "no test events on the input: did go test -json run?")
	}
	for _, f := range r.Failed {
		problems = append(problems, "failed: "+f)
	}
	used := make([]bool, len(allow))
	if len(r.Skips) > 0 {
		fmt.Fprintf(out, "\n%d skipped tests:\n", len(r.Skips))
	}
	for _, s := range r.Skips {
		verdict := "NOT ALLOWED"
		for i, a := range allow {
			if a.matches(s.Package, s.Test) {
				used[i] = true
				verdict = "allowed: " + a.Why
				break
			}
		}
		fmt.Fprintf(out, "  %s %s\n      reason: %s\n      %s\n", s.Package, s.Test, s.Reason, verdict)
		if verdict == "NOT ALLOWED" {
			problems = append(problems, fmt.Sprintf("skipped and not on the allow list: %s %s (%s)", s.Package, s.Test, s.Reason))
		}
	}
	for i, a := range allow {
		if !used[i] {
			fmt.Fprintf(out, "note: allow-list line %d (%s %s) matched no skip in this run\n", a.Line, a.Package, a.Test)
		}
	}
	if wantTests {
		for _, pkg := range sortedKeys(r.Ran) {
			if r.Ran[pkg] == 0 {
				problems = append(problems, "no test ran in "+pkg)
			}
		}
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
