package projectors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

const testNS = "orders"

// The SQLite store must satisfy the projector's target interface.
var _ projectors.KeyValueTarget = (*sqlite.Store)(nil)

// startJetStream runs an in-process NATS server with JetStream and returns a
// JetStream context on a connection to it, with the namespace stream and the
// dead-letter stream created the way the gateway creates them.
func startJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, js := natstest.Start(tb)
	natstest.NamespaceStreams(tb, js, testNS)
	return js
}

func openStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "kv.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// testLogger logs to the test output when -v is set.
func testLogger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startProjector creates and starts a projector; Cleanup stops it.
func startProjector(tb testing.TB, js jetstream.JetStream, target string, t projectors.KeyValueTarget, opts ...projectors.Option) *projectors.Projector {
	tb.Helper()
	opts = append([]projectors.Option{projectors.WithLogger(testLogger(tb)), projectors.WithBackoff(time.Millisecond, 20*time.Millisecond)}, opts...)
	p, err := projectors.New(js, testNS, target, t, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			tb.Errorf("stop: %v", err)
		}
	})
	return p
}

func waitApplied(tb testing.TB, p *projectors.Projector, seq uint64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitApplied(ctx, seq); err != nil {
		tb.Fatalf("wait applied %d: %v (applied %d)", seq, err, p.Applied())
	}
}

// checkCaughtUp waits until p has applied everything pub published and
// asserts that st holds exactly pub's model. If rec is not nil (it wraps st),
// it also asserts that every event pub published was applied exactly once.
func checkCaughtUp(tb testing.TB, p *projectors.Projector, pub *publisher, st *sqlite.Store, rec *recorder) {
	tb.Helper()
	waitApplied(tb, p, pub.lastSeq())
	checkStore(tb, st, pub.model)
	if rec != nil {
		rec.checkExactlyOnce(tb, pub.seqs)
	}
}

// model is the expected KeyValue state: id -> key -> value, and the
// revision (seq of the last applied write) of each id.
type model struct {
	items map[string]map[string]string
	rev   map[string]uint64
}

func newModel() *model {
	return &model{items: map[string]map[string]string{}, rev: map[string]uint64{}}
}

// apply mirrors the store's documented semantics.
func (m *model) apply(seq uint64, ev *prismv1.KeyValueEvent) {
	id := string(ev.GetId())
	switch {
	case ev.GetPut() != nil:
		if m.items[id] == nil {
			m.items[id] = map[string]string{}
		}
		for _, it := range ev.GetPut().GetItems() {
			m.items[id][string(it.GetKey())] = string(it.GetValue())
		}
		m.rev[id] = seq
	case len(ev.GetDelete().GetKeys()) == 0:
		delete(m.items, id)
	default:
		if _, ok := m.items[id]; ok {
			m.rev[id] = seq
		}
		for _, k := range ev.GetDelete().GetKeys() {
			delete(m.items[id], string(k))
		}
	}
	if len(m.items[id]) == 0 {
		delete(m.items, id)
		delete(m.rev, id)
	}
}

// randomEvent returns a put of 1-3 items or a delete of keys or of a whole
// record, over ids id000..id<ids-1>.
func randomEvent(r *rand.Rand, ids int) *prismv1.KeyValueEvent {
	id := fmt.Appendf(nil, "id%03d", r.IntN(ids))
	switch x := r.IntN(10); {
	case x < 7:
		put := &prismv1.KeyValuePut{}
		for range 1 + r.IntN(3) {
			put.Items = append(put.Items, &prismv1.Item{
				Key:   fmt.Appendf(nil, "k%d", r.IntN(5)),
				Value: fmt.Appendf(nil, "v%d", r.Uint32()),
			})
		}
		return &prismv1.KeyValueEvent{Id: id, Change: &prismv1.KeyValueEvent_Put{Put: put}}
	case x < 9:
		del := &prismv1.KeyValueDelete{Keys: [][]byte{fmt.Appendf(nil, "k%d", r.IntN(5))}}
		return &prismv1.KeyValueEvent{Id: id, Change: &prismv1.KeyValueEvent_Delete{Delete: del}}
	default:
		return &prismv1.KeyValueEvent{Id: id, Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{}}}
	}
}

// publisher publishes KeyValue events in order and keeps the model.
// streamLog publishes to the test namespace stream and records the
// sequences; publisher and tsPublisher embed it.
type streamLog struct {
	js   jetstream.JetStream
	mu   sync.Mutex
	last uint64
	seqs []uint64 // seqs of the data events (not markers, not poison)
}

// publishEvent publishes a data event and records its seq; record updates
// the caller's model under the lock. Errors are reported with tb.Error:
// it may run outside the test goroutine.
func (l *streamLog) publishEvent(tb testing.TB, msg *nats.Msg, record func(seq uint64)) uint64 {
	tb.Helper()
	ack, err := l.js.PublishMsg(context.Background(), msg)
	if err != nil {
		tb.Error(err)
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	record(ack.Sequence)
	l.last = ack.Sequence
	l.seqs = append(l.seqs, ack.Sequence)
	return ack.Sequence
}

// publishRaw publishes msg as is (poison, markers) and returns its seq.
func (l *streamLog) publishRaw(tb testing.TB, msg *nats.Msg) uint64 {
	tb.Helper()
	ack, err := l.js.PublishMsg(context.Background(), msg)
	if err != nil {
		tb.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = ack.Sequence
	return ack.Sequence
}

func (l *streamLog) lastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

type publisher struct {
	streamLog
	model *model
}

func newPublisher(js jetstream.JetStream) *publisher {
	return &publisher{streamLog: streamLog{js: js}, model: newModel()}
}

func (p *publisher) publish(tb testing.TB, ev *prismv1.KeyValueEvent) uint64 {
	tb.Helper()
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, ev)
	if err != nil {
		tb.Fatal(err)
	}
	return p.publishEvent(tb, msg, func(seq uint64) { p.model.apply(seq, ev) })
}

// publishRandom publishes n random events over ids records.
func (p *publisher) publishRandom(tb testing.TB, r *rand.Rand, n, ids int) {
	tb.Helper()
	for range n {
		p.publish(tb, randomEvent(r, ids))
	}
}

// checkStore asserts that the store holds exactly the model: the same ids,
// and for each the same items and revision.
func checkStore(tb testing.TB, st *sqlite.Store, m *model) {
	tb.Helper()
	ctx := context.Background()
	var ids []string
	req := &prismv1.ScanRequest{PageSize: 1000}
	for {
		resp, err := st.ScanIDs(ctx, req)
		if err != nil {
			tb.Fatal(err)
		}
		for _, id := range resp.GetIds() {
			ids = append(ids, string(id))
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if want := slices.Sorted(maps.Keys(m.items)); !slices.Equal(ids, want) {
		tb.Fatalf("ids in store: %d, want %d\n got %q\nwant %q", len(ids), len(want), ids, want)
	}
	for id, want := range m.items {
		resp, err := st.GetItems(ctx, &prismv1.GetRequest{Id: []byte(id), PageSize: 1000})
		if err != nil {
			tb.Fatal(err)
		}
		got := map[string]string{}
		for _, it := range resp.GetItems() {
			got[string(it.GetKey())] = string(it.GetValue())
		}
		if !maps.Equal(got, want) {
			tb.Fatalf("record %s: items %v, want %v", id, got, want)
		}
		if resp.GetRevision() != m.rev[id] {
			tb.Fatalf("record %s: revision %d, want %d", id, resp.GetRevision(), m.rev[id])
		}
	}
}

// recorder wraps a store and counts, per seq, how many times a change was
// actually applied (its seq above the store's checkpoint at a successful
// commit). fail decides, before each call, to fail it: before the commit
// (commitFirst false) or after it (commitFirst true). gate, set with
// setGate, runs first, outside the lock, and may block the call (see
// applyGate); an error from it fails the call.
type recorder struct {
	st *sqlite.Store

	mu      sync.Mutex
	applied map[uint64]int
	calls   int
	fail    func(call int, changes []*prismv1.KeyValueChange) (err error, commitFirst bool)
	delay   time.Duration
	gate    func(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error
}

// setGate sets (or with nil clears) the gate of the next calls.
func (r *recorder) setGate(fn func(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate = fn
}

func newRecorder(st *sqlite.Store) *recorder {
	return &recorder{st: st, applied: map[uint64]int{}}
}

func (r *recorder) Checkpoint(ctx context.Context) (uint64, error) { return r.st.Checkpoint(ctx) }

func (r *recorder) ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		if err := gate(ctx, changes, through); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	var failErr error
	var commitFirst bool
	if r.fail != nil {
		failErr, commitFirst = r.fail(r.calls, changes)
	}
	if failErr != nil && !commitFirst {
		return failErr
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	cp, err := r.st.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if err := r.st.ApplyKeyValue(ctx, changes, through); err != nil {
		return err
	}
	for _, c := range changes {
		if c.GetSeq() > cp {
			r.applied[c.GetSeq()]++
		}
	}
	return failErr
}

// checkExactlyOnce asserts that every seq in want was applied exactly once
// and nothing else was applied.
func (r *recorder) checkExactlyOnce(tb testing.TB, want []uint64) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, seq := range want {
		if n := r.applied[seq]; n != 1 {
			tb.Errorf("seq %d applied %d times, want once", seq, n)
		}
	}
	if len(r.applied) != len(want) {
		tb.Errorf("%d seqs applied, want %d", len(r.applied), len(want))
	}
}

var errUnavailable = errors.New("backend unavailable")

// garbageEvent returns a message with the valid CloudEvents headers of a
// random KeyValue event and data that does not parse.
func garbageEvent(tb testing.TB, r *rand.Rand) *nats.Msg {
	tb.Helper()
	good, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, randomEvent(r, 10))
	if err != nil {
		tb.Fatal(err)
	}
	garbage := nats.NewMsg(good.Subject)
	for k, v := range good.Header {
		garbage.Header[k] = v
	}
	garbage.Data = []byte{0xff, 0xff, 0xff, 0x01}
	return garbage
}

// deadLetters returns the messages of the dead-letter stream.
func deadLetters(tb testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	tb.Helper()
	return natstest.Msgs(tb, js, subjects.DeadLetterStream)
}
