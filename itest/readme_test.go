package itest

import (
	"bufio"
	"os"
	"path/filepath"
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
		if isLogTourLine(r) || isTimeSeriesTourLine(r) || isSecurityTourLine(r) || isEntityTourLine(r) || isGraphTourLine(r) {
			continue // TestReadmeLogTour, TestReadmeTimeSeriesTour, TestReadmeSecurityTour, TestReadmeGraphTour
		}
		r.send(t, nc)
	}
}

// send sends the request as `nats req` does and checks the outcome the
// README marks (or success): the Prism-Error-Code header and, for an
// error, the code in the body. It returns the reply.
func (r readmeRequest) send(t *testing.T, nc *nats.Conn) *nats.Msg {
	t.Helper()
	msg := nats.NewMsg(r.subject)
	msg.Data = []byte(r.body)
	reply, err := nc.RequestMsgWithContext(testCtx(t), msg)
	if err != nil {
		t.Fatalf("%s: %v", r.line, err)
	}
	if got := reply.Header.Get(subjects.HeaderErrorCode); got != r.wantCode {
		t.Fatalf("%s\n  got code %q, want %q; reply %s", r.line, got, r.wantCode, reply.Data)
	}
	if r.wantCode != "" && !strings.Contains(string(reply.Data), `"code":"`+r.wantCode+`"`) {
		t.Fatalf("%s: error body %s lacks the code", r.line, reply.Data)
	}
	t.Logf("%s\n  → %s", r.line, reply.Data)
	return reply
}

// readmeRequestsOf returns the README's requests on namespace ns, in
// order, failing when there are fewer than least.
func readmeRequestsOf(t *testing.T, ns string, least int) []readmeRequest {
	t.Helper()
	var reqs []readmeRequest
	for _, r := range readmeRequests(t) {
		if strings.HasPrefix(r.subject, "prism."+ns+".") {
			reqs = append(reqs, r)
		}
	}
	if len(reqs) < least {
		t.Fatalf("found only %d nats req lines of namespace %s in the README", len(reqs), ns)
	}
	return reqs
}

// isEntityTourLine reports whether a README request is one of the Entity
// section's, which need the example's generated spec applied first; the
// example's test (examples/userprofile) runs the same operations.
func isEntityTourLine(r readmeRequest) bool {
	return strings.HasPrefix(r.subject, "prism.user_profile.")
}

// isGraphTourLine reports whether a README request is one of the Graph
// section's, on namespace social.
func isGraphTourLine(r readmeRequest) bool {
	return strings.HasPrefix(r.subject, "prism.social.")
}

// TestReadmeGraphTour runs the README's `nats req` commands of the Graph
// section in order against a `prism serve` whose --config holds the
// section's social.yaml, and checks each outcome and what the reads
// return.
func TestReadmeGraphTour(t *testing.T) {
	reqs := readmeRequestsOf(t, "social", 8)
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "social.yaml"), []byte(readmeYAML(t, "name: social")), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPrism(t, t.TempDir(), 0, "--config", cfg)
	nc, _ := p.connect(t)
	want := map[string]string{
		"prism.social.read.neighbours": `"id":"alice","direction":"DIRECTION_IN"`,
		"prism.social.read.traverse":   `{"id":"carol","depth":2}`,
		"prism.social.read.path":       `"vertices":["alice","bob","carol"]`,
	}
	for _, r := range reqs {
		reply := r.send(t, nc)
		if w, ok := want[r.subject]; ok && r.wantCode == "" && !strings.Contains(strings.ReplaceAll(string(reply.Data), " ", ""), w) {
			t.Fatalf("%s: %s lacks %s", r.line, reply.Data, w)
		}
	}
}

// isTimeSeriesTourLine reports whether a README request is one of the
// TimeSeries section's, on namespace metrics.
func isTimeSeriesTourLine(r readmeRequest) bool {
	return strings.HasPrefix(r.subject, "prism.metrics.")
}

// TestReadmeTimeSeriesTour runs the README's `nats req` commands of the
// TimeSeries section in order against a `prism serve` whose --config holds
// the section's own metrics.yaml, and checks each outcome; a read must
// return the appended event.
func TestReadmeTimeSeriesTour(t *testing.T) {
	reqs := readmeRequestsOf(t, "metrics", 4)
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "metrics.yaml"), []byte(readmeYAML(t, "name: metrics")), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPrism(t, t.TempDir(), 0, "--config", cfg)
	nc, _ := p.connect(t)
	for _, r := range reqs {
		reply := r.send(t, nc)
		// protojson varies its spaces: drop them before looking for the event
		if strings.Contains(r.subject, ".read.") && r.wantCode == "" && !strings.Contains(strings.ReplaceAll(string(reply.Data), " ", ""), `"eventId":"Ym9vdA=="`) {
			t.Fatalf("%s: the appended event is missing: %s", r.line, reply.Data)
		}
	}
}

// readmeYAML returns the README's ```yaml block whose first line is first.
func readmeYAML(t *testing.T, first string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```yaml\n")
	for _, blk := range blocks[1:] {
		body, _, _ := strings.Cut(blk, "```")
		if strings.HasPrefix(body, first+"\n") {
			return body
		}
	}
	t.Fatalf("the README has no yaml block starting %q", first)
	return ""
}

// TestReadmeNamespaceAppliesAsShown applies the Namespaces section's
// telemetry.yaml to the setups the README shows it with: the plain
// `make run` refuses it and names --sync-always; `make run
// ARGS=--sync-always` serves it.
func TestReadmeNamespaceAppliesAsShown(t *testing.T) {
	spec := writeSpec(t, readmeYAML(t, "name: telemetry"))

	plain := startPrism(t, t.TempDir(), 0)
	out, err := plain.cli(t, "", "apply", "-f", spec)
	if err == nil || !strings.Contains(out, "--sync-always") {
		t.Fatalf("apply on plain make run: err %v, output %q; want a refusal naming --sync-always", err, out)
	}

	synced := startPrism(t, t.TempDir(), 0, "--sync-always")
	synced.mustCLI(t, "apply", "-f", spec)
	if n := synced.nsGet(t, "telemetry"); n.Namespace.Name != "telemetry" || n.Revision == 0 {
		t.Fatalf("ns get telemetry after apply: %+v", n)
	}
}
