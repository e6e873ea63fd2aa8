package gateway_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// tsNS is the timeseries namespace of tsEnv; testNS is its keyvalue one.
const tsNS = "metrics"

// tsEnv is a gateway over an in-process NATS server serving the timeseries
// namespace tsNS, read through recordingReader, next to the keyvalue
// namespace testNS.
type tsEnv struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	reader  *recordingReader
	waiter  *manualWaiter
	keyring *pii.Keyring
}

type tsEnvConfig struct {
	consistency namespaces.Consistency
	waiter      gateway.AppliedWaiter // default: env.waiter
	opts        []gateway.Option
	// sqlite serves tsNS from a real SQLite store filled by a projector of
	// the stream, instead of recordingReader and manualWaiter.
	sqlite bool
	// namespace changes tsNS's declaration (fields, PII).
	namespace func(*namespaces.Namespace)
	// kek, when set, opens a keyring with it for the gateway.
	kek pii.KEK
}

func newTSEnv(t testing.TB, cfg tsEnvConfig) *tsEnv {
	t.Helper()
	ctx := context.Background()
	nc, js := natstest.Start(t)
	ts := namespaces.Namespace{Name: tsNS, Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite", Consistency: cfg.consistency, Retention: namespaces.Duration(time.Hour)}
	if cfg.namespace != nil {
		cfg.namespace(&ts)
	}
	kv := namespaces.Namespace{Name: testNS, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	for _, ns := range []namespaces.Namespace{ts, kv} {
		if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
			t.Fatalf("EnsureStreams %s: %v", ns.Name, err)
		}
	}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })

	e := &tsEnv{nc: nc, js: js, reader: &recordingReader{}, waiter: newManualWaiter()}
	var (
		reader gateway.TimeSeriesReader = e.reader
		waiter gateway.AppliedWaiter    = e.waiter
	)
	if cfg.sqlite {
		tsStore, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ts.db"))
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { _ = tsStore.Close() })
		reader, waiter = tsStore, startTSProjector(t, js, tsStore)
	}
	if cfg.waiter != nil {
		waiter = cfg.waiter
	}
	opts := append([]gateway.Option{gateway.WithClock(func() time.Time { return fixedNow }), gateway.WithConsistencyWait(2 * time.Second)}, cfg.opts...)
	if cfg.kek != nil {
		keyring, err := pii.OpenKeyring(ctx, js, pii.KeyringConfig{KEK: cfg.kek})
		if err != nil {
			t.Fatalf("OpenKeyring: %v", err)
		}
		t.Cleanup(keyring.Close)
		e.keyring = keyring
		opts = append(opts, gateway.WithKeyring(keyring))
	}
	gw, err := gateway.New(nc, opts...)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := gw.AddTimeSeriesNamespace(ts, reader, waiter); err != nil {
		t.Fatalf("AddTimeSeriesNamespace: %v", err)
	}
	if err := gw.AddNamespace(kv, store, stuckWaiter{}); err != nil {
		t.Fatalf("AddNamespace: %v", err)
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
	return e
}

// tsStreamMsgs returns how many messages the stream of tsNS holds.
func tsStreamMsgs(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	return uint64(len(natstest.Msgs(t, js, subjects.Stream(tsNS))))
}

// recordingReader is a TimeSeriesReader that records the requests it gets
// and answers with the response (or error) set by the test.
type recordingReader struct {
	mu       sync.Mutex
	ranges   []*prismv1.ReadRangeRequest
	searches []*prismv1.SearchRequest
	resp     *prismv1.EventsResponse
	err      error
}

func (r *recordingReader) answer(resp *prismv1.EventsResponse, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resp, r.err = resp, err
}

func (r *recordingReader) ReadRange(_ context.Context, req *prismv1.ReadRangeRequest) (*prismv1.EventsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ranges = append(r.ranges, proto.Clone(req).(*prismv1.ReadRangeRequest))
	if r.err != nil {
		return nil, r.err
	}
	return proto.Clone(r.resp).(*prismv1.EventsResponse), nil
}

func (r *recordingReader) Search(_ context.Context, req *prismv1.SearchRequest) (*prismv1.EventsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.searches = append(r.searches, proto.Clone(req).(*prismv1.SearchRequest))
	if r.err != nil {
		return nil, r.err
	}
	return proto.Clone(r.resp).(*prismv1.EventsResponse), nil
}

func (r *recordingReader) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ranges, r.searches = nil, nil
}

func (r *recordingReader) calls() (ranges []*prismv1.ReadRangeRequest, searches []*prismv1.SearchRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ranges, r.searches
}

// manualWaiter is a projection whose progress the test sets.
type manualWaiter struct {
	mu      sync.Mutex
	applied uint64
	changed chan struct{}
}

func newManualWaiter() *manualWaiter { return &manualWaiter{changed: make(chan struct{})} }

func (w *manualWaiter) Set(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied = seq
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *manualWaiter) Applied() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied
}

func (w *manualWaiter) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		w.mu.Lock()
		applied, ch := w.applied, w.changed
		w.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// t0 is the event time of the first test event.
var t0 = time.Date(2029, 6, 1, 12, 0, 0, 0, time.UTC)

func tsEvent(at time.Time, id string, tags map[string]string, payload string) *prismv1.TimeSeriesEvent {
	return &prismv1.TimeSeriesEvent{EventTime: timestamppb.New(at), EventId: []byte(id), Tags: tags, Payload: []byte(payload)}
}

func appendReq(series string, events ...*prismv1.TimeSeriesEvent) *prismv1.AppendRequest {
	return &prismv1.AppendRequest{SeriesId: []byte(series), Events: events}
}

// startTSProjector applies the stream of tsNS to store, one event at a time,
// and reports its progress in a manualWaiter.
func startTSProjector(t testing.TB, js jetstream.JetStream, store *sqlite.Store) *manualWaiter {
	t.Helper()
	w := newManualWaiter()
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := js.OrderedConsumer(ctx, subjects.Stream(tsNS), jetstream.OrderedConsumerConfig{})
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
		app, err := subjects.DecodeTimeSeriesEvent(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			t.Errorf("projector: seq %d: %v", seq, err)
			return
		}
		var changes []*prismv1.TimeSeriesChange
		if app != nil {
			changes = append(changes, &prismv1.TimeSeriesChange{Seq: seq, Append: app})
		}
		if err := store.ApplyTimeSeries(ctx, changes, seq); err != nil {
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
