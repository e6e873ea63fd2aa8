package itest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/subjects"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape returns every sample of /metrics by its series, written as
// Prometheus' text format writes it: name{label="value",...}.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestObservability runs a scripted workload against `prism serve` and
// checks that /metrics counts exactly what was done, that /healthz and
// /readyz answer, and that the JSON logs carry request ids and no record
// data.
func TestObservability(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "http://" + addr
	p := startPrism(t, t.TempDir(), 0, "--http-listen", addr, "--log-format", "json", "--log-level", "debug")

	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz after start: %d %s", code, body)
	}

	nc, c := p.connect(t)
	kv := c.KeyValue("demo") // strong: every put waits for the projection
	ctx := testCtx(t)
	const (
		puts        = 10 // one more comes after the poison event
		foundGets   = 4
		missingGets = 2
		badRequests = 3
	)
	seqs := make([]uint64, puts)
	for i := range seqs {
		seq, err := kv.Put(ctx, fmt.Appendf(nil, "pii-id-%d", i), []client.Item{item("pii-key", "pii-value")})
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = seq
	}
	for i := range foundGets {
		if _, err := kv.Get(ctx, fmt.Appendf(nil, "pii-id-%d", i), client.MinSeq(seqs[i])); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	for i := range missingGets {
		if _, err := kv.Get(ctx, fmt.Appendf(nil, "pii-missing-%d", i)); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("get of a missing record: %v, want NOT_FOUND", err)
		}
	}
	for range badRequests {
		reply, err := nc.RequestWithContext(ctx, subjects.Write("demo", "put"), []byte(`{}`)) // no id
		if err != nil {
			t.Fatal(err)
		}
		if code := reply.Header.Get(subjects.HeaderErrorCode); code != "INVALID_ARGUMENT" {
			t.Fatalf("put without an id: code %q, want INVALID_ARGUMENT", code)
		}
	}

	// A poison event straight on the stream, then a put behind it: the put
	// of a strong namespace replies once applied, so the poison event has
	// been dead-lettered by then.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	poison := nats.NewMsg(subjects.KeyValueEvent("demo", []byte("pii-poison")))
	poison.Data = []byte("pii-garbage")
	poison.Header.Set(subjects.HeaderType, subjects.TypeKeyValuePut)
	if _, err := js.PublishMsg(ctx, poison); err != nil {
		t.Fatal(err)
	}
	last := nats.NewMsg(subjects.Write("demo", "put"))
	last.Data = []byte(`{"id":"` + "cGlpLWxhc3Q=" + `","items":[{"key":"azE=","value":"djE="}]}`) // pii-last
	last.Header.Set(gateway.HeaderRequestID, "obs-request-1")
	reply, err := nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		t.Fatalf("last put: %s %s", code, reply.Data)
	}
	if id := reply.Header.Get(gateway.HeaderRequestID); id != "obs-request-1" {
		t.Errorf("reply request id %q, want the one sent", id)
	}
	const allPuts = puts + 1
	lastSeq := uint64(allPuts + 1) // every put and the poison event

	m := scrape(t, base)
	want := map[string]float64{
		`prism_gateway_requests_total{code="OK",namespace="demo",op="write.put"}`:                       allPuts,
		`prism_gateway_requests_total{code="INVALID_ARGUMENT",namespace="demo",op="write.put"}`:         badRequests,
		`prism_gateway_requests_total{code="OK",namespace="demo",op="read.get"}`:                        foundGets,
		`prism_gateway_requests_total{code="NOT_FOUND",namespace="demo",op="read.get"}`:                 missingGets,
		`prism_gateway_request_duration_seconds_count{code="OK",namespace="demo",op="write.put"}`:       allPuts,
		`prism_gateway_request_duration_seconds_count{code="NOT_FOUND",namespace="demo",op="read.get"}`: missingGets,
		`prism_gateway_jetstream_publish_duration_seconds_count{namespace="demo"}`:                      allPuts,
		`prism_gateway_consistency_wait_duration_seconds_count{kind="strong_write",namespace="demo"}`:   allPuts,
		`prism_gateway_consistency_wait_duration_seconds_count{kind="min_seq_read",namespace="demo"}`:   foundGets,
		`prism_projector_events_applied_total{namespace="demo",target="sqlite"}`:                        allPuts,
		`prism_projector_dead_letters_total{namespace="demo",target="sqlite"}`:                          1,
		`prism_projector_applied_seq{namespace="demo",target="sqlite"}`:                                 float64(lastSeq),
		`prism_projector_lag{namespace="demo",target="sqlite"}`:                                         0,
		`prism_projector_lag_seconds{namespace="demo",target="sqlite"}`:                                 0,
		`prism_projector_apply_errors_total{namespace="demo",target="sqlite"}`:                          0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// A wait either found the write applied or waited for it; none timed
	// out. Which of the two is a race, their sum is not.
	for kind, n := range map[string]float64{"strong_write": allPuts, "min_seq_read": foundGets} {
		var sum float64
		for _, result := range []string{"immediate", "applied"} {
			sum += m[fmt.Sprintf(`prism_gateway_consistency_waits_total{kind=%q,namespace="demo",result=%q}`, kind, result)]
		}
		if sum != n {
			t.Errorf("consistency waits of %s that succeeded: %v, want %v", kind, sum, n)
		}
		if v := m[fmt.Sprintf(`prism_gateway_consistency_timeouts_total{kind=%q,namespace="demo"}`, kind)]; v != 0 {
			t.Errorf("consistency timeouts of %s: %v, want 0", kind, v)
		}
	}
	if m[`prism_projector_apply_duration_seconds_count{namespace="demo",target="sqlite"}`] < 1 {
		t.Error("no projector apply duration observed")
	}
	if t.Failed() {
		_, body := httpGet(t, base+"/metrics")
		t.Logf("/metrics:\n%s", body)
	}

	p.stop()
	checkJSONLogs(t, p.Output(), "obs-request-1")
}

// checkJSONLogs checks that every log line of out is a JSON object, that a
// request line carries requestID, and that no line holds record data (all
// of it was written with "pii" in it).
func checkJSONLogs(t *testing.T, out, requestID string) {
	t.Helper()
	var records, requests int
	found := false
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		// The lines prism serve prints to stdout for people.
		if line == "" || strings.HasPrefix(line, "Prism is ") || strings.HasPrefix(line, "try: ") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		records++
		if rec["msg"] == "request" || rec["msg"] == "request refused" {
			requests++
			if _, ok := rec["request_id"].(string); !ok {
				t.Errorf("request log line without request_id: %s", line)
			}
		}
		if rec["request_id"] == requestID && rec["code"] == "OK" && rec["op"] == "write.put" && rec["namespace"] == "demo" {
			found = true
		}
		for _, data := range []string{"pii-id", "pii-key", "pii-value", "pii-missing", "pii-poison", "pii-garbage", "pii-last", "cGlp"} {
			if strings.Contains(line, data) {
				t.Errorf("log line holds record data %q: %s", data, line)
			}
		}
	}
	if records == 0 || requests == 0 {
		t.Errorf("%d JSON log records, %d about requests; want some of each:\n%s", records, requests, out)
	}
	if !found {
		t.Errorf("no log line of request %s:\n%s", requestID, out)
	}
}
