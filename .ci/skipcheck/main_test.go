package main

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// sampleRun runs go test -json on testdata/sample, a module whose tests
// pass, skip (with a log line before the skip), fail, skip in a subtest,
// do not build (broken) and do not match -run (empty).
func sampleRun(t *testing.T) []byte {
	t.Helper()
	cmd := exec.Command("go", "test", "-count=1", "-json", "-run", "TestPass|TestSkip|TestFail|TestParent", "./...")
	cmd.Dir = "testdata/sample"
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	if _, failed := err.(*exec.ExitError); err != nil && !failed {
		t.Fatal(err)
	}
	return out
}

func TestReadSample(t *testing.T) {
	var printed bytes.Buffer
	rep, err := Read(bytes.NewReader(sampleRun(t)), &printed)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sample TestFail", "sample", "sample/broken"}; !sameSet(rep.Failed, want) {
		t.Errorf("failed = %q, want %q", rep.Failed, want)
	}
	want := []Skip{
		{Package: "sample", Test: "TestSkip", Reason: "sample_test.go:10: probing the server / sample_test.go:11: no server here"},
		{Package: "sample", Test: "TestParent/child", Reason: "sample_test.go:19: child 1 skips"},
	}
	if !slices.Equal(rep.Skips, want) {
		t.Errorf("skips = %q\nwant %q", rep.Skips, want)
	}
	if rep.Ran["sample"] != 6 || rep.Ran["sample/empty"] != 0 {
		t.Errorf("ran = %v, want 6 in sample and 0 in sample/empty", rep.Ran)
	}
	out := printed.String()
	for _, s := range []string{
		"the value is wrong", "--- FAIL: TestFail", "FAIL\tsample\t", // the failed test and its package
		"cannot use \"not a number\"", "FAIL\tsample/broken [build failed]", // the build error
		"ok  \tsample/empty",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("printed output lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"--- PASS", "=== RUN   TestPass", "no server here", "PASS\n"} {
		if strings.Contains(out, s) {
			t.Errorf("printed output has %q, which go test without -json hides:\n%s", s, out)
		}
	}
}

func TestCheck(t *testing.T) {
	rep := &Report{
		Events: 10,
		Skips: []Skip{
			{Package: "example.com/m/backends/natskv", Test: "TestStandaloneServer", Reason: "too old"},
			{Package: "example.com/m/itest", Test: "TestNew", Reason: "no server"},
		},
		Ran: map[string]int{"example.com/m/itest": 2, "example.com/m/none": 0},
	}
	allow, err := ParseAllowed(strings.NewReader(`
# comment line
backends/natskv TestStandaloneServer   the server is 2.9   # trailing comment
m/itest TestOld  stale: nothing skips it
kv TestNew  a suffix must end at a slash, so this does not match itest
`))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	problems := rep.Check(&out, allow, false)
	if len(problems) != 1 || !strings.Contains(problems[0], "example.com/m/itest TestNew (no server)") {
		t.Errorf("problems = %q, want only TestNew not allowed", problems)
	}
	for _, s := range []string{
		"allowed: the server is 2.9", "reason: no server", "NOT ALLOWED",
		"allow-list line 4 (m/itest TestOld) matched no skip",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}

	problems = rep.Check(&bytes.Buffer{}, allow, true)
	if !slices.Contains(problems, "no test ran in example.com/m/none") {
		t.Errorf("with want-tests, problems = %q; want the package that ran none", problems)
	}

	if problems := (&Report{}).Check(&bytes.Buffer{}, nil, false); len(problems) != 1 || !strings.Contains(problems[0], "no test events") {
		t.Errorf("empty input: problems = %q", problems)
	}
}

func TestParseAllowedNeedsAReason(t *testing.T) {
	_, err := ParseAllowed(strings.NewReader("itest TestA  why\nitest TestB # no reason\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want line 2 refused", err)
	}
}

func TestReadRefusesGarbage(t *testing.T) {
	if _, err := Read(strings.NewReader("ok  \tpkg\t0.1s\n"), &bytes.Buffer{}); err == nil {
		t.Fatal("plain go test output was read as JSON")
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
