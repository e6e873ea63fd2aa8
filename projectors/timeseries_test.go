package projectors_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// tsKey is the identity of a TimeSeries event.
type tsKey struct {
	series string
	sec    int64
	nanos  int32
	id     string
}

func keyOf(series []byte, e *prismv1.TimeSeriesEvent) tsKey {
	return tsKey{string(series), e.GetEventTime().GetSeconds(), e.GetEventTime().GetNanos(), string(e.GetEventId())}
}

// tsModel is the expected TimeSeries state: every event by identity. The
// first append of an identity wins; appending it again changes nothing.
type tsModel map[tsKey]*prismv1.TimeSeriesEvent

func (m tsModel) apply(app *prismv1.TimeSeriesAppend) {
	for _, e := range app.GetEvents() {
		if k := keyOf(app.GetSeriesId(), e); m[k] == nil {
			m[k] = e
		}
	}
}

// memSeries is an in-memory TimeSeriesTarget that keeps the contract: each
// call is atomic with the checkpoint, changes at or below the checkpoint
// are skipped. It counts how often each seq was applied, and fail decides,
// before each call, to fail it before (commitFirst false) or after the
// commit.
type memSeries struct {
	mu        sync.Mutex
	cp        uint64
	events    tsModel
	applied   map[uint64]int
	calls     int
	fail      func(call int, changes []*prismv1.TimeSeriesChange) (err error, commitFirst bool)
	violation error // the first breach of the projector's side of the contract
}

var (
	_ projectors.TimeSeriesTarget = (*memSeries)(nil)
	_ projectors.TimeSeriesTarget = (*sqlite.Store)(nil)
)

func newMemSeries() *memSeries {
	return &memSeries{events: tsModel{}, applied: map[uint64]int{}}
}

func (s *memSeries) Checkpoint(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp, nil
}

func (s *memSeries) ApplyTimeSeries(_ context.Context, changes []*prismv1.TimeSeriesChange, through uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	prev := uint64(0)
	for _, c := range changes {
		if (c.GetSeq() <= prev || c.GetSeq() > through || c.GetAppend() == nil) && s.violation == nil {
			s.violation = fmt.Errorf("call %d: change seq %d after %d, through %d, append %v", s.calls, c.GetSeq(), prev, through, c.GetAppend())
		}
		prev = c.GetSeq()
	}
	var failErr error
	var commitFirst bool
	if s.fail != nil {
		failErr, commitFirst = s.fail(s.calls, changes)
	}
	if failErr != nil && !commitFirst {
		return failErr
	}
	if through <= s.cp {
		return failErr
	}
	for _, c := range changes {
		if c.GetSeq() <= s.cp {
			continue
		}
		s.applied[c.GetSeq()]++
		s.events.apply(c.GetAppend())
	}
	s.cp = through
	return failErr
}

// restoreCopy returns a new target holding s's events and checkpoint, as
// if restored from a backup taken now.
func (s *memSeries) restoreCopy() *memSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newMemSeries()
	c.cp = s.cp
	for k, e := range s.events {
		c.events[k] = e
	}
	return c
}

// check asserts that s holds exactly want and that the projector kept its
// side of the contract.
func (s *memSeries) check(tb testing.TB, want tsModel) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.violation != nil {
		tb.Fatalf("contract broken: %v", s.violation)
	}
	if len(s.events) != len(want) {
		tb.Fatalf("target holds %d events, want %d", len(s.events), len(want))
	}
	for k, w := range want {
		if got := s.events[k]; !proto.Equal(got, w) {
			tb.Fatalf("event %+v: %v, want %v", k, got, w)
		}
	}
}

// checkExactlyOnce asserts that every seq in want was applied exactly once
// and nothing else was applied.
func (s *memSeries) checkExactlyOnce(tb testing.TB, want []uint64) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seq := range want {
		if n := s.applied[seq]; n != 1 {
			tb.Errorf("seq %d applied %d times, want once", seq, n)
		}
	}
	if len(s.applied) != len(want) {
		tb.Errorf("%d seqs applied, want %d", len(s.applied), len(want))
	}
}

// tsPublisher publishes TimeSeries appends in order and keeps the model.
type tsPublisher struct {
	streamLog
	model tsModel
}

func newTSPublisher(js jetstream.JetStream) *tsPublisher {
	return &tsPublisher{streamLog: streamLog{js: js}, model: tsModel{}}
}

func (p *tsPublisher) publish(tb testing.TB, app *prismv1.TimeSeriesAppend) uint64 {
	tb.Helper()
	msg, err := subjects.NewTimeSeriesEvent(subjects.EventMeta{Namespace: testNS}, app)
	if err != nil {
		tb.Fatal(err)
	}
	return p.publishEvent(tb, msg, func(uint64) { p.model.apply(app) })
}

func (p *tsPublisher) publishRandom(tb testing.TB, r *rand.Rand, n, series int) {
	tb.Helper()
	for range n {
		p.publish(tb, randomAppend(r, series))
	}
}

var tsBase = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// randomAppend returns an append of 1-3 events to one of series series
// (ids that need encoding), at one of 50 times with one of 4 event ids, so
// identities repeat and appending them again must change nothing.
func randomAppend(r *rand.Rand, series int) *prismv1.TimeSeriesAppend {
	app := &prismv1.TimeSeriesAppend{SeriesId: fmt.Appendf(nil, "cpu.host %d/é", r.IntN(series))}
	for range 1 + r.IntN(3) {
		app.Events = append(app.Events, &prismv1.TimeSeriesEvent{
			EventTime: timestamppb.New(tsBase.Add(time.Duration(r.IntN(50)) * time.Second)),
			EventId:   fmt.Appendf(nil, "e%d", r.IntN(4)),
			Tags:      map[string]string{"dc": fmt.Sprintf("dc%d", r.IntN(3))},
			Payload:   fmt.Appendf(nil, "%d", r.Uint32()),
		})
	}
	return app
}

func startTimeSeriesProjector(tb testing.TB, js jetstream.JetStream, target string, t projectors.TimeSeriesTarget, opts ...projectors.Option) *projectors.Projector {
	tb.Helper()
	opts = append([]projectors.Option{projectors.WithLogger(testLogger(tb)), projectors.WithBackoff(time.Millisecond, 20*time.Millisecond)}, opts...)
	p, err := projectors.NewTimeSeries(js, testNS, target, t, opts...)
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

func TestTimeSeriesProjectsAppends(t *testing.T) {
	js := startJetStream(t)
	st := newMemSeries()
	pub := newTSPublisher(js)
	r := rand.New(rand.NewPCG(21, 22))
	pub.publishRandom(t, r, 500, 8)
	// An idempotency marker carries no change but moves the checkpoint.
	pub.publishRaw(t, subjects.NewMarker(subjects.EventMeta{Namespace: testNS, IdempotencyToken: "tok-1"}, 1))

	p := startTimeSeriesProjector(t, js, "mem", st, projectors.WithBatchSize(32))
	// Half before Start, half while it runs.
	pub.publishRandom(t, r, 500, 8)
	last := pub.publishRaw(t, subjects.NewMarker(subjects.EventMeta{Namespace: testNS, IdempotencyToken: "tok-2"}, 1))

	waitApplied(t, p, last)
	if got := p.Applied(); got != last {
		t.Fatalf("Applied() = %d, want %d", got, last)
	}
	if cp, _ := st.Checkpoint(context.Background()); cp != last {
		t.Fatalf("target checkpoint = %d, want %d", cp, last)
	}
	st.check(t, pub.model)
	st.checkExactlyOnce(t, pub.seqs)
	if len(pub.model) < 100 {
		t.Fatalf("model has only %d events: the test covers too little", len(pub.model))
	}
	if n := len(deadLetters(t, js)); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
}

// TestTimeSeriesRetriedBatchAppliesOnce: the target commits a batch and
// then reports an error, as if the process died between commit and ack.
// The projector retries the batch; the checkpoint makes the retry a no-op.
func TestTimeSeriesRetriedBatchAppliesOnce(t *testing.T) {
	js := startJetStream(t)
	st := newMemSeries()
	st.fail = func(call int, changes []*prismv1.TimeSeriesChange) (error, bool) {
		if call%3 == 0 && len(changes) > 0 {
			return errUnavailable, true
		}
		return nil, false
	}
	pub := newTSPublisher(js)
	p := startTimeSeriesProjector(t, js, "mem", st, projectors.WithBatchSize(16))
	pub.publishRandom(t, rand.New(rand.NewPCG(23, 24)), 600, 20)
	waitApplied(t, p, pub.lastSeq())
	st.check(t, pub.model)
	st.checkExactlyOnce(t, pub.seqs)
	if st.calls < 10 {
		t.Fatalf("only %d apply calls: the failure path was not exercised", st.calls)
	}
}

// TestTimeSeriesRedeliveryAfterRestore: the target is restored from an
// older copy, so the consumer is repositioned behind what it delivered and
// appends are delivered again. Re-appending changes nothing.
func TestTimeSeriesRedeliveryAfterRestore(t *testing.T) {
	js := startJetStream(t)
	live := newMemSeries()
	pub := newTSPublisher(js)
	r := rand.New(rand.NewPCG(25, 26))
	pub.publishRandom(t, r, 200, 6)

	p, err := projectors.NewTimeSeries(js, testNS, "mem", live, projectors.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, p, pub.lastSeq())
	backup := live.restoreCopy()
	backupCP, _ := backup.Checkpoint(context.Background())
	pub.publishRandom(t, r, 200, 6)
	waitApplied(t, p, pub.lastSeq())
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	live.check(t, pub.model)

	// The restored copy has a checkpoint behind the consumer's delivered
	// position; a new projector must deliver everything after it again.
	restored := startTimeSeriesProjector(t, js, "mem", backup)
	pub.publishRandom(t, r, 50, 6)
	waitApplied(t, restored, pub.lastSeq())
	backup.check(t, pub.model)
	var again []uint64
	for _, seq := range pub.seqs {
		if seq > backupCP {
			again = append(again, seq)
		}
	}
	backup.checkExactlyOnce(t, again)
	if len(again) != 250 {
		t.Fatalf("%d appends after the backup, want 250", len(again))
	}
}

// poisonFrom returns a copy of the headers of msg with data instead of its
// data.
func poisonFrom(msg *nats.Msg, data []byte) *nats.Msg {
	m := nats.NewMsg(msg.Subject)
	for k, v := range msg.Header {
		m.Header[k] = append([]string(nil), v...)
	}
	m.Data = data
	return m
}

func TestTimeSeriesPoisonEventsAreDeadLettered(t *testing.T) {
	js := startJetStream(t)
	st := newMemSeries()
	pub := newTSPublisher(js)
	r := rand.New(rand.NewPCG(27, 28))
	meta := subjects.EventMeta{Namespace: testNS}
	pub.publishRandom(t, r, 20, 4)

	goodApp := randomAppend(r, 4)
	good, err := subjects.NewTimeSeriesEvent(meta, goodApp)
	if err != nil {
		t.Fatal(err)
	}
	// A KeyValue put of the same id: the subject and id match, the payload
	// is of the wrong kind.
	kvPut := &prismv1.KeyValueEvent{Id: goodApp.GetSeriesId(), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
		Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}},
	}}}
	kvData, err := proto.Marshal(kvPut)
	if err != nil {
		t.Fatal(err)
	}
	kvEvent, err := subjects.NewKeyValueEvent(meta, kvPut)
	if err != nil {
		t.Fatal(err)
	}
	noTime := randomAppend(r, 4)
	noTime.Events[0].EventTime = nil
	noTimeMsg, err := subjects.NewTimeSeriesEvent(meta, noTime)
	if err != nil {
		t.Fatal(err)
	}
	// Decodes fine, but the target refuses it: the projector must isolate
	// it from its batch.
	refused := randomAppend(r, 4)
	refused.Events[0].Payload = []byte("refuse me")
	refusedMsg, err := subjects.NewTimeSeriesEvent(meta, refused)
	if err != nil {
		t.Fatal(err)
	}
	st.fail = func(_ int, changes []*prismv1.TimeSeriesChange) (error, bool) {
		for _, c := range changes {
			for _, e := range c.GetAppend().GetEvents() {
				if string(e.GetPayload()) == "refuse me" {
					return permanentErr{c.GetSeq()}, false
				}
			}
		}
		return nil, false
	}

	poison := []struct {
		name string
		msg  *nats.Msg
	}{
		{"garbage payload", poisonFrom(good, []byte{0xff, 0xff, 0xff, 0x01})},
		{"KeyValue payload on a ts subject", poisonFrom(good, kvData)},
		{"KeyValue event in a ts namespace", kvEvent},
		{"event without event_time", noTimeMsg},
		{"refused by the target permanently", refusedMsg},
	}
	bySeq := map[uint64]int{}
	for i, pm := range poison {
		bySeq[pub.publishRaw(t, pm.msg)] = i
		pub.publishRandom(t, r, 3, 4)
	}
	pub.publishRaw(t, subjects.NewMarker(subjects.EventMeta{Namespace: testNS, IdempotencyToken: "tok-1"}, 1))
	pub.publishRandom(t, r, 20, 4)

	p := startTimeSeriesProjector(t, js, "mem", st)
	pub.publishRandom(t, r, 5, 4)
	waitApplied(t, p, pub.lastSeq())
	st.check(t, pub.model)
	st.checkExactlyOnce(t, pub.seqs)

	dls := deadLetters(t, js)
	if len(dls) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(dls), len(poison))
	}
	for _, dl := range dls {
		h := dl.Header
		seq, err := strconv.ParseUint(h.Get(subjects.HeaderDLQSeq), 10, 64)
		i, ok := bySeq[seq]
		if err != nil || !ok {
			t.Fatalf("dead letter of seq %q is not one of the poison events %v", h.Get(subjects.HeaderDLQSeq), bySeq)
		}
		delete(bySeq, seq)
		name, orig := poison[i].name, poison[i].msg
		if dl.Subject != subjects.DeadLetter(testNS) || h.Get(subjects.HeaderDLQSubject) != orig.Subject ||
			h.Get(subjects.HeaderDLQTarget) != "mem" || h.Get(subjects.HeaderDLQStream) != subjects.Stream(testNS) {
			t.Errorf("%s: dead letter on %q with headers %v", name, dl.Subject, h)
		}
		if h.Get(subjects.HeaderDLQReason) == "" {
			t.Errorf("%s: no reason", name)
		}
		if string(dl.Data) != string(orig.Data) || h.Get(subjects.HeaderType) != orig.Header.Get(subjects.HeaderType) {
			t.Errorf("%s: dead letter differs from the original", name)
		}
		t.Logf("%s: %s", name, h.Get(subjects.HeaderDLQReason))
	}
}

func TestTimeSeriesWaitApplied(t *testing.T) {
	js := startJetStream(t)
	st := newMemSeries()
	pub := newTSPublisher(js)
	r := rand.New(rand.NewPCG(29, 30))
	pub.publishRandom(t, r, 10, 3)
	p := startTimeSeriesProjector(t, js, "mem", st)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitApplied(ctx, 10); err != nil {
		t.Fatalf("reached seq: %v", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := p.WaitApplied(short, 1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("future seq: err = %v, want context.DeadlineExceeded", err)
	}

	const waiters = 50
	errs := make(chan error, waiters)
	for i := range waiters {
		go func() { errs <- p.WaitApplied(ctx, uint64(11+i%10)) }()
	}
	pub.publishRandom(t, r, 10, 3)
	for range waiters {
		if err := <-errs; err != nil {
			t.Fatalf("waiter: %v", err)
		}
	}
	// WaitApplied returned, so the target must already hold seq 20.
	if cp, _ := st.Checkpoint(context.Background()); cp < 20 {
		t.Fatalf("target checkpoint %d after every waiter returned, want >= 20", cp)
	}
	st.check(t, pub.model)
}

func TestNewTimeSeriesErrors(t *testing.T) {
	js := startJetStream(t)
	tests := []struct {
		name    string
		ns      string
		target  string
		t       projectors.TimeSeriesTarget
		opts    []projectors.Option
		wantErr error
	}{
		{"bad namespace", "Bad", "mem", newMemSeries(), nil, subjects.ErrInvalidNamespace},
		{"bad option", testNS, "mem", newMemSeries(), []projectors.Option{projectors.WithBatchSize(0)}, projectors.ErrInvalidOption},
		{"nil target", testNS, "mem", nil, nil, nil},
		{"bad target name", testNS, "a.b", newMemSeries(), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := projectors.NewTimeSeries(js, tt.ns, tt.target, tt.t, tt.opts...)
			if err == nil || p != nil {
				t.Fatalf("NewTimeSeries = %v, %v; want an error", p, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := projectors.NewTimeSeries(nil, testNS, "mem", newMemSeries()); err == nil {
		t.Fatal("nil JetStream accepted")
	}
}

// A KeyValue projector treats TimeSeries appends as poison, so a namespace
// of one abstraction is never silently projected as the other.
func TestKeyValueProjectorDeadLettersTimeSeries(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	kv := newPublisher(js)
	ts := newTSPublisher(js)
	r := rand.New(rand.NewPCG(31, 32))
	kv.publishRandom(t, r, 10, 5)
	tsSeq := ts.publish(t, randomAppend(r, 2))
	kv.publishRandom(t, r, 10, 5)
	p := startProjector(t, js, "sqlite", st)
	checkCaughtUp(t, p, kv, st, nil)
	dls := deadLetters(t, js)
	if len(dls) != 1 || dls[0].Header.Get(subjects.HeaderDLQSeq) != strconv.FormatUint(tsSeq, 10) {
		t.Fatalf("dead letters %v, want exactly seq %d", dls, tsSeq)
	}
}

// The SQLite store is a TimeSeriesTarget: appends projected into it read
// back exactly, and an append it refuses (an empty series id) is
// dead-lettered alone.
func TestTimeSeriesIntoSQLite(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newTSPublisher(js)
	r := rand.New(rand.NewPCG(33, 34))
	pub.publishRandom(t, r, 150, 5)
	refused := randomAppend(r, 5)
	refused.SeriesId = []byte{}
	msg, err := subjects.NewTimeSeriesEvent(subjects.EventMeta{Namespace: testNS}, refused)
	if err != nil {
		t.Fatal(err)
	}
	refusedSeq := pub.publishRaw(t, msg)
	pub.publishRaw(t, subjects.NewMarker(subjects.EventMeta{Namespace: testNS, IdempotencyToken: "tok-1"}, 1))
	p := startTimeSeriesProjector(t, js, "sqlite", st, projectors.WithBatchSize(16))
	pub.publishRandom(t, r, 150, 5)
	waitApplied(t, p, pub.lastSeq())

	if cp, err := st.Checkpoint(context.Background()); err != nil || cp != pub.lastSeq() {
		t.Fatalf("store checkpoint = %d, %v; want %d", cp, err, pub.lastSeq())
	}
	got := tsModel{}
	for i := range 5 {
		series := fmt.Appendf(nil, "cpu.host %d/é", i)
		req := &prismv1.ReadRangeRequest{SeriesId: series, PageSize: 7}
		for {
			resp, err := st.ReadRange(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, se := range resp.GetEvents() {
				k := keyOf(se.GetSeriesId(), se.GetEvent())
				if got[k] != nil {
					t.Fatalf("event %+v read twice", k)
				}
				got[k] = se.GetEvent()
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	if len(got) != len(pub.model) {
		t.Fatalf("store holds %d events, want %d", len(got), len(pub.model))
	}
	for k, w := range pub.model {
		if !proto.Equal(got[k], w) {
			t.Fatalf("event %+v: %v, want %v", k, got[k], w)
		}
	}
	dls := deadLetters(t, js)
	if len(dls) != 1 || dls[0].Header.Get(subjects.HeaderDLQSeq) != strconv.FormatUint(refusedSeq, 10) {
		t.Fatalf("dead letters %v, want exactly seq %d", dls, refusedSeq)
	}
}
