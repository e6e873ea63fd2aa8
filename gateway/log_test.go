package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// logNS is the log namespace of logEnv.
const logNS = "clicks"

// logEnv is a gateway over an in-process NATS server serving the log
// namespace logNS from a Kafka store on a kfake cluster, filled by a
// minimal projector (an ordered consumer applying each event).
type logEnv struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	store *kafka.Store
}

func newLogEnv(t testing.TB, consistency namespaces.Consistency) *logEnv {
	t.Helper()
	ctx := context.Background()
	nc, js := natstest.Start(t)
	ns := namespaces.Namespace{Name: logNS, Abstraction: namespaces.AbstractionLog, Backend: "kafka", Consistency: consistency}
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	_, brokers := kafkatest.Start(t)
	store, err := kafka.Open(ctx, brokers, logNS, kafka.WithPartitions(3))
	if err != nil {
		t.Fatalf("kafka.Open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	w := startLogProjector(t, js, store)
	gw, err := gateway.New(nc, gateway.WithClock(func() time.Time { return fixedNow }), gateway.WithConsistencyWait(5*time.Second))
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := gw.AddLogNamespace(ns, store, w); err != nil {
		t.Fatalf("AddLogNamespace: %v", err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
	})
	return &logEnv{nc: nc, js: js, store: store}
}

func startLogProjector(t testing.TB, js jetstream.JetStream, store *kafka.Store) *manualWaiter {
	t.Helper()
	w := newManualWaiter()
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := js.OrderedConsumer(ctx, subjects.Stream(logNS), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			t.Errorf("metadata: %v", err)
			return
		}
		seq := md.Sequence.Stream
		ev, err := subjects.DecodeLogEvent(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			t.Errorf("projector: seq %d: %v", seq, err)
			return
		}
		var changes []*prismv1.LogChange
		if ev != nil {
			changes = append(changes, &prismv1.LogChange{Seq: seq, Event: ev, CloudEvent: subjects.CloudEventHeaders(m.Headers())})
		}
		if err := store.ApplyLog(ctx, changes, seq); err != nil {
			if ctx.Err() == nil {
				t.Errorf("projector: apply seq %d: %v", seq, err)
			}
			return
		}
		w.Set(seq)
	})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(func() {
		cc.Stop()
		cancel()
	})
	return w
}

func logAppendReq(key, value string, headers map[string]string) *prismv1.LogAppendRequest {
	return &prismv1.LogAppendRequest{Key: []byte(key), Value: []byte(value), Headers: headers}
}

func TestLogAppendThenFetch(t *testing.T) {
	for _, e := range []enc{encJSON, encProto} {
		t.Run(e.String(), func(t *testing.T) {
			env := newLogEnv(t, namespaces.ReadYourWrites)
			var seqs []uint64
			for i, key := range []string{"a", "b", "a", "a"} {
				var resp prismv1.WriteResponse
				if perr := call(t, env.nc, subjects.Write(logNS, "append"), logAppendReq(key, fmt.Sprint(i), map[string]string{"i": fmt.Sprint(i)}), &resp, e); perr != nil {
					t.Fatalf("append %d: %v", i, perr)
				}
				seqs = append(seqs, resp.GetSeq())
			}
			var page prismv1.LogFetchResponse
			req := &prismv1.LogFetchRequest{Key: []byte("a"), MinSeq: seqs[3]}
			if perr := call(t, env.nc, subjects.Read(logNS, "fetch"), req, &page, e); perr != nil {
				t.Fatalf("fetch: %v", perr)
			}
			var got []string
			for _, r := range page.GetRecords() {
				if string(r.GetKey()) != "a" {
					continue
				}
				stored := storedLogMsg(t, env.js, r.GetSeq())
				if r.GetId() != stored.Header.Get(subjects.HeaderID) || !r.GetTime().AsTime().Equal(fixedNow) {
					t.Fatalf("record %v: id or time differ from the stored event (%s)", r, stored.Header.Get(subjects.HeaderID))
				}
				got = append(got, fmt.Sprintf("%s@%d:%s", r.GetValue(), r.GetSeq(), r.GetHeaders()["i"]))
			}
			want := []string{fmt.Sprintf("0@%d:0", seqs[0]), fmt.Sprintf("2@%d:2", seqs[2]), fmt.Sprintf("3@%d:3", seqs[3])}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("records of key a: %v, want %v", got, want)
			}
			if page.GetPartitions() != 3 || page.GetNextOffset() != page.GetHighWatermark() {
				t.Fatalf("page: partitions %d, next %d, high watermark %d", page.GetPartitions(), page.GetNextOffset(), page.GetHighWatermark())
			}
		})
	}
}

func storedLogMsg(t testing.TB, js jetstream.JetStream, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(context.Background(), subjects.Stream(logNS))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A strong log namespace answers an append once Kafka holds the record.
func TestLogStrongAppendIsFetchable(t *testing.T) {
	env := newLogEnv(t, namespaces.Strong)
	var resp prismv1.WriteResponse
	mustCall(t, env.nc, subjects.Write(logNS, "append"), logAppendReq("k", "v", nil), &resp)
	page, err := env.store.Fetch(context.Background(), &prismv1.LogFetchRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.GetRecords()) != 1 || page.GetRecords()[0].GetSeq() != resp.GetSeq() {
		t.Fatalf("after a strong append of seq %d: %v", resp.GetSeq(), page.GetRecords())
	}
}

func TestLogIdempotentAppend(t *testing.T) {
	env := newLogEnv(t, namespaces.Eventual)
	req := logAppendReq("k", "v", nil)
	req.IdempotencyToken = "tok-1"
	var first, second prismv1.WriteResponse
	mustCall(t, env.nc, subjects.Write(logNS, "append"), req, &first)
	mustCall(t, env.nc, subjects.Write(logNS, "append"), req, &second)
	if second.GetSeq() != first.GetSeq() || !second.GetDuplicate() {
		t.Fatalf("retry: %v, want seq %d duplicate", &second, first.GetSeq())
	}
	other := logAppendReq("k", "other", nil)
	other.IdempotencyToken = "tok-1"
	if perr := call(t, env.nc, subjects.Write(logNS, "append"), other, &second, encJSON); !isCode(perr, prismv1.Code_IDEMPOTENCY_MISMATCH) {
		t.Fatalf("token reused with another body: %v, want IDEMPOTENCY_MISMATCH", perr)
	}
}

func TestLogRequestsRefused(t *testing.T) {
	env := newLogEnv(t, namespaces.Eventual)
	var w prismv1.WriteResponse
	mustCall(t, env.nc, subjects.Write(logNS, "append"), logAppendReq("k", "v", nil), &w)
	manyHeaders := map[string]string{}
	for i := range gateway.MaxLogHeaders + 1 {
		manyHeaders[fmt.Sprint("h", i)] = "v"
	}
	appends := []struct {
		name string
		req  *prismv1.LogAppendRequest
	}{
		{"empty key", logAppendReq("", "v", nil)},
		{"long key", logAppendReq(strings.Repeat("k", gateway.MaxIDBytes+1), "v", nil)},
		{"large value", logAppendReq("k", strings.Repeat("v", gateway.MaxValueBytes+1), nil)},
		{"reserved ce- header", logAppendReq("k", "v", map[string]string{"ce-id": "forged"})},
		{"reserved prism- header", logAppendReq("k", "v", map[string]string{"Prism-Seq": "1"})},
		{"content-type header", logAppendReq("k", "v", map[string]string{"content-type": "x"})},
		{"empty header name", logAppendReq("k", "v", map[string]string{"": "x"})},
		{"too many headers", logAppendReq("k", "v", manyHeaders)},
		{"long header value", logAppendReq("k", "v", map[string]string{"h": strings.Repeat("x", gateway.MaxLogHeaderValueBytes+1)})},
		{"bad token", &prismv1.LogAppendRequest{Key: []byte("k"), IdempotencyToken: "a b"}},
	}
	for _, tt := range appends {
		t.Run("append/"+tt.name, func(t *testing.T) {
			if perr := call(t, env.nc, subjects.Write(logNS, "append"), tt.req, &w, encProto); !isCode(perr, prismv1.Code_INVALID_ARGUMENT) {
				t.Fatalf("append: %v, want INVALID_ARGUMENT", perr)
			}
		})
	}
	fetches := []struct {
		name string
		req  *prismv1.LogFetchRequest
	}{
		{"negative partition", &prismv1.LogFetchRequest{Partition: -1}},
		{"key and partition", &prismv1.LogFetchRequest{Key: []byte("k"), Partition: 1}},
		{"negative offset", &prismv1.LogFetchRequest{Offset: -1}},
		{"end not above offset", &prismv1.LogFetchRequest{Offset: 3, EndOffset: 2}},
		{"max records", &prismv1.LogFetchRequest{MaxRecords: gateway.MaxFetchRecords + 1}},
		{"partition the topic lacks", &prismv1.LogFetchRequest{Partition: 3}},
		{"offset past the end", &prismv1.LogFetchRequest{Key: []byte("k"), Offset: 10}},
	}
	var page prismv1.LogFetchResponse
	for _, tt := range fetches {
		t.Run("fetch/"+tt.name, func(t *testing.T) {
			if perr := call(t, env.nc, subjects.Read(logNS, "fetch"), tt.req, &page, encJSON); !isCode(perr, prismv1.Code_INVALID_ARGUMENT) {
				t.Fatalf("fetch: %v, want INVALID_ARGUMENT", perr)
			}
		})
	}
	for _, op := range []string{"write.put", "read.get", "read.range"} {
		t.Run("unimplemented/"+op, func(t *testing.T) {
			kind, name, _ := strings.Cut(op, ".")
			subj := subjects.Write(logNS, name)
			if kind == "read" {
				subj = subjects.Read(logNS, name)
			}
			if perr := call(t, env.nc, subj, &prismv1.GetRequest{}, &page, encJSON); !isCode(perr, prismv1.Code_UNIMPLEMENTED) {
				t.Fatalf("%s: %v, want UNIMPLEMENTED", op, perr)
			}
		})
	}
}
