package itest

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/subjects"
)

// readmeRequest is one `nats req SUBJECT 'BODY'` line of the README.
type readmeRequest struct {
	line     string
	subject  string
	body     string
	wantCode string // "" = success
}

var reqLine = regexp.MustCompile(`^nats req (\S+) '([^']*)'(?:\s*#\s*→\s*([A-Z_]+))?\s*$`)

func readmeRequests(t *testing.T) []readmeRequest {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []readmeRequest
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "nats req ") {
			continue
		}
		m := reqLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("README line does not parse as nats req SUBJECT 'BODY' [# → CODE]: %s", line)
		}
		out = append(out, readmeRequest{line: line, subject: m[1], body: m[2], wantCode: m[3]})
	}
	return out
}

// TestReadmeTour runs the README's `nats req` commands in order against a
// fresh `prism serve`, like a new user would, and checks each outcome.
func TestReadmeTour(t *testing.T) {
	reqs := readmeRequests(t)
	if len(reqs) < 10 {
		t.Fatalf("found only %d nats req lines in the README", len(reqs))
	}
	p := startPrism(t, t.TempDir(), 0)
	nc, _ := p.connect(t)
	for _, r := range reqs {
		if isLogTourLine(r) {
			continue // TestReadmeLogTour, on a Kafka log namespace
		}
		msg := nats.NewMsg(r.subject)
		msg.Data = []byte(r.body)
		reply, err := nc.RequestMsgWithContext(testCtx(t), msg)
		if err != nil {
			t.Fatalf("%s: %v", r.line, err)
		}
		got := reply.Header.Get(subjects.HeaderErrorCode)
		if got != r.wantCode {
			t.Fatalf("%s\n  got code %q, want %q; reply %s", r.line, got, r.wantCode, reply.Data)
		}
		if r.wantCode != "" && !strings.Contains(string(reply.Data), `"code":"`+r.wantCode+`"`) {
			t.Fatalf("%s: error body %s lacks the code", r.line, reply.Data)
		}
		t.Logf("%s\n  → %s", r.line, reply.Data)
	}
}
