package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// metricValues gathers reg into name{labels} → counter value or histogram
// sample count.
func metricValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName() + "{" + labels(m) + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestConsistencyMetrics: a strong write and a min_seq read whose
// projection never catches up are counted as timeouts of their kind, and
// the write's JetStream publish is timed.
func TestConsistencyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, envConfig{consistency: namespaces.Strong, waiter: stuckWaiter{}, opts: []gateway.Option{
		gateway.WithRegisterer(reg), gateway.WithConsistencyWait(50 * time.Millisecond),
	}})
	var w prismv1.WriteResponse
	if er := call(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v"), &w, encProto); !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) {
		t.Fatalf("strong put with a stuck projection: %v, want NOT_CONSISTENT_YET", er)
	}
	var g prismv1.GetResponse
	if er := call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: 1}, &g, encProto); !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) {
		t.Fatalf("get with min_seq and a stuck projection: %v, want NOT_CONSISTENT_YET", er)
	}
	// A read without min_seq does not wait (the store has the write: only
	// the waiter is stuck).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.proj.WaitApplied(ctx, 1); err != nil { // the put: the stream's first event
		t.Fatal(err)
	}
	_ = call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r")}, &g, encProto)

	got := metricValues(t, reg)
	for k, v := range map[string]float64{
		"prism_gateway_consistency_waits_total{kind=strong_write,namespace=demo,result=timeout}":     1,
		"prism_gateway_consistency_waits_total{kind=min_seq_read,namespace=demo,result=timeout}":     1,
		"prism_gateway_consistency_timeouts_total{kind=strong_write,namespace=demo}":                 1,
		"prism_gateway_consistency_timeouts_total{kind=min_seq_read,namespace=demo}":                 1,
		"prism_gateway_consistency_wait_duration_seconds{kind=strong_write,namespace=demo}":          1,
		"prism_gateway_consistency_wait_duration_seconds{kind=min_seq_read,namespace=demo}":          1,
		"prism_gateway_jetstream_publish_duration_seconds{namespace=demo}":                           1,
		"prism_gateway_requests_total{code=NOT_CONSISTENT_YET,namespace=demo,op=write.put}":          1,
		"prism_gateway_request_duration_seconds{code=NOT_CONSISTENT_YET,namespace=demo,op=read.get}": 1,
		"prism_gateway_request_duration_seconds{code=OK,namespace=demo,op=read.get}":                 1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if t.Failed() {
		t.Logf("all: %v", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the gateway's workers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRequestIDs: the reply echoes the client's request id, or a new one
// when the client sent none or an unusable one; the request's log line
// carries it and none of the request's data.
func TestRequestIDs(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, envConfig{opts: []gateway.Option{gateway.WithLogger(log)}})

	send := func(id string, req *prismv1.PutRequest) *nats.Msg {
		t.Helper()
		msg := nats.NewMsg(subjects.Write(testNS, "put"))
		msg.Data = encode(t, req, encJSON)
		if id != "" {
			msg.Header.Set(gateway.HeaderRequestID, id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reply, err := e.nc.RequestMsgWithContext(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}

	tests := []struct {
		name   string
		sent   string
		req    *prismv1.PutRequest
		wantID func(string) bool
	}{
		{"client id", "order-42:try.1", putReq("secret-id-1", "secret-key", "secret-value"), func(id string) bool { return id == "order-42:try.1" }},
		{"none", "", putReq("secret-id-2", "secret-key", "secret-value"), func(id string) bool { return len(id) == 22 }},
		{"unusable", "has space", putReq("secret-id-3", "secret-key", "secret-value"), func(id string) bool { return len(id) == 22 }},
		{"too long", strings.Repeat("x", 65), putReq("secret-id-4", "secret-key", "secret-value"), func(id string) bool { return len(id) == 22 }},
		{"refused", "refused-1", putReq("", "secret-key", "secret-value"), func(id string) bool { return id == "refused-1" }},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := send(tt.sent, tt.req)
			id := reply.Header.Get(gateway.HeaderRequestID)
			if !tt.wantID(id) {
				t.Fatalf("reply request id %q (sent %q)", id, tt.sent)
			}
			if ids[id] {
				t.Fatalf("request id %q reused", id)
			}
			ids[id] = true
		})
	}

	// Drain so that every request's log line is written.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.gw.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Contains(out, "secret") {
		t.Errorf("the logs contain a record id, key or value:\n%s", out)
	}
	logged := map[string]string{} // request id → code
	for line := range strings.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if id, ok := rec["request_id"].(string); ok {
			logged[id], _ = rec["code"].(string)
		}
	}
	for id := range ids {
		if _, ok := logged[id]; !ok {
			t.Errorf("no log line with request_id %q:\n%s", id, out)
		}
	}
	if logged["refused-1"] != "INVALID_ARGUMENT" {
		t.Errorf("refused request logged with code %q, want INVALID_ARGUMENT", logged["refused-1"])
	}
}

// natsCLIDefaultTimeout is the nats CLI's default request timeout, the
// one a person trying Prism out waits.
const natsCLIDefaultTimeout = 5 * time.Second

// TestNotConsistentYetBeforeClientTimeout: with the default consistency
// wait, a min_seq read and a strong write that the projection never
// reaches answer NOT_CONSISTENT_YET within the nats CLI's default timeout,
// instead of leaving the caller with a bare timeout.
func TestNotConsistentYetBeforeClientTimeout(t *testing.T) {
	e := newEnv(t, envConfig{consistency: namespaces.Strong, waiter: stuckWaiter{}, defaultWait: true})
	for _, c := range []struct {
		subject string
		req     proto.Message
	}{
		{subjects.Write(testNS, "put"), putReq("r", "k", "v")},
		{subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: 1}},
	} {
		msg := nats.NewMsg(c.subject)
		msg.Data = encode(t, c.req, encJSON)
		reply, err := e.nc.RequestMsg(msg, natsCLIDefaultTimeout)
		if err != nil {
			t.Fatalf("%s: %v; want a NOT_CONSISTENT_YET reply within the nats CLI's %v", c.subject, err, natsCLIDefaultTimeout)
		}
		if got := reply.Header.Get(subjects.HeaderErrorCode); got != prismv1.Code_NOT_CONSISTENT_YET.String() {
			t.Fatalf("%s: code %q, want NOT_CONSISTENT_YET; reply %s", c.subject, got, reply.Data)
		}
	}
}
