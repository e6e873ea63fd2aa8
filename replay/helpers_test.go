package replay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// catchUpTimeout bounds the wait for a projector to apply a stream; generous
// for a loaded CI machine, far above the milliseconds it takes.
const catchUpTimeout = 60 * time.Second

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// startJetStream runs an in-process server and returns a JetStream context
// on it.
func startJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, js := natstest.Start(tb)
	return js
}

// namespace creates the streams of namespace ns as the gateway does.
func namespace(tb testing.TB, js jetstream.JetStream, ns string) string {
	tb.Helper()
	natstest.NamespaceStreams(tb, js, ns)
	return ns
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

// counting is a KeyValue target that counts the changes it applied: those
// above its checkpoint in a committed batch.
type counting struct {
	*sqlite.Store
	applied atomic.Int64
}

func (c *counting) ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if err := c.Store.ApplyKeyValue(ctx, changes, through); err != nil {
		return err
	}
	for _, ch := range changes {
		if ch.GetSeq() > cp {
			c.applied.Add(1)
		}
	}
	return nil
}

// project runs the projector of ns into t, known as target, until it has
// applied the stream's last sequence, and stops it.
func project(tb testing.TB, js jetstream.JetStream, ns, target string, t projectors.KeyValueTarget) {
	tb.Helper()
	p, err := projectors.New(js, ns, target, t, projectors.WithLogger(discard), projectors.WithBackoff(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	last := streamInfo(tb, js, ns).State.LastSeq
	if err := p.WaitApplied(ctx, last); err != nil {
		tb.Fatalf("projector %s: wait applied %d: %v (applied %d)", target, last, err, p.Applied())
	}
	if err := p.Stop(ctx); err != nil {
		tb.Fatal(err)
	}
	waitAcked(tb, js, ns, target, last)
}

// waitAcked waits until the consumer of target has acknowledged seq: the
// projector acks after its commit, without waiting for the server, and
// compaction leaves records a consumer has not acknowledged alone.
func waitAcked(tb testing.TB, js jetstream.JetStream, ns, target string, seq uint64) {
	tb.Helper()
	deadline := time.Now().Add(catchUpTimeout)
	for {
		c, err := js.Consumer(context.Background(), subjects.Stream(ns), subjects.Consumer(target))
		if err != nil {
			tb.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if info.AckFloor.Stream >= seq {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("consumer of %s acknowledged %d, not %d", target, info.AckFloor.Stream, seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func streamInfo(tb testing.TB, js jetstream.JetStream, ns string) *jetstream.StreamInfo {
	tb.Helper()
	s, err := js.Stream(context.Background(), subjects.Stream(ns))
	if err != nil {
		tb.Fatal(err)
	}
	return s.CachedInfo()
}

// record is a record as a projection shows it.
type record struct {
	items map[string]string // key -> value "@" expire time ("" if none)
	rev   uint64
}

func (r record) String() string { return fmt.Sprintf("%v rev %d", r.items, r.rev) }

// itemString is how tests compare an item's value and expiry.
func itemString(it *prismv1.Item) string {
	if et := it.GetExpireTime(); et != nil {
		return fmt.Sprintf("%s@%d.%09d", it.GetValue(), et.GetSeconds(), et.GetNanos())
	}
	return string(it.GetValue())
}

// readAll returns every record of st.
func readAll(tb testing.TB, st *sqlite.Store) map[string]record {
	tb.Helper()
	ctx := context.Background()
	out := map[string]record{}
	req := &prismv1.ScanRequest{PageSize: 1000}
	for {
		resp, err := st.ScanIDs(ctx, req)
		if err != nil {
			tb.Fatal(err)
		}
		for _, id := range resp.GetIds() {
			get, err := st.GetItems(ctx, &prismv1.GetRequest{Id: id, PageSize: 1000})
			if err != nil {
				tb.Fatal(err)
			}
			r := record{items: map[string]string{}, rev: get.GetRevision()}
			for _, it := range get.GetItems() {
				r.items[string(it.GetKey())] = itemString(it)
			}
			out[string(id)] = r
		}
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// sameRecords fails the test unless a and b hold the same records, with
// the same revisions if revs.
func sameRecords(tb testing.TB, what string, a, b map[string]record, revs bool) {
	tb.Helper()
	if ka, kb := slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)); !slices.Equal(ka, kb) {
		tb.Fatalf("%s: ids %q, want %q", what, ka, kb)
	}
	for id, ra := range a {
		rb := b[id]
		if !maps.Equal(ra.items, rb.items) || revs && ra.rev != rb.rev {
			tb.Fatalf("%s: record %q = %v, want %v", what, id, ra, rb)
		}
	}
}

func publish(tb testing.TB, js jetstream.JetStream, ns string, ev *prismv1.KeyValueEvent) uint64 {
	tb.Helper()
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns}, ev)
	if err != nil {
		tb.Fatal(err)
	}
	return publishMsg(tb, js, msg)
}

func publishMsg(tb testing.TB, js jetstream.JetStream, msg *nats.Msg) uint64 {
	tb.Helper()
	ack, err := js.PublishMsg(context.Background(), msg)
	if err != nil {
		tb.Fatal(err)
	}
	return ack.Sequence
}

func put(id string, kvs ...string) *prismv1.KeyValueEvent {
	p := &prismv1.KeyValuePut{}
	for i := 0; i+1 < len(kvs); i += 2 {
		p.Items = append(p.Items, &prismv1.Item{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	return &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: p}}
}

func del(id string, keys ...string) *prismv1.KeyValueEvent {
	d := &prismv1.KeyValueDelete{}
	for _, k := range keys {
		d.Keys = append(d.Keys, []byte(k))
	}
	return &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Delete{Delete: d}}
}

// randomEvents publishes n random events over records r0..r<ids-1> with
// keys k0..k4: puts (some items expired already, some expiring in a day),
// deletes of keys and of whole records, empty puts, and what the projector
// dead-letters: payloads that do not parse and items with an invalid
// expire_time.
func randomEvents(tb testing.TB, js jetstream.JetStream, ns string, r *rand.Rand, n, ids int) {
	tb.Helper()
	now := time.Now()
	for range n {
		id := fmt.Sprintf("r%d", r.IntN(ids))
		key := func() []byte { return fmt.Appendf(nil, "k%d", r.IntN(5)) }
		var ev *prismv1.KeyValueEvent
		switch x := r.IntN(100); {
		case x < 55:
			p := &prismv1.KeyValuePut{}
			for range 1 + r.IntN(3) {
				it := &prismv1.Item{Key: key(), Value: fmt.Appendf(nil, "v%d", r.Uint32())}
				switch r.IntN(10) {
				case 0:
					it.ExpireTime = timestamppb.New(now.Add(-time.Hour))
				case 1:
					it.ExpireTime = timestamppb.New(now.Add(24 * time.Hour))
				}
				p.Items = append(p.Items, it)
			}
			ev = &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: p}}
		case x < 72:
			d := &prismv1.KeyValueDelete{Keys: [][]byte{key()}}
			if r.IntN(2) == 0 {
				d.Keys = append(d.Keys, key())
			}
			ev = &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Delete{Delete: d}}
		case x < 82:
			ev = del(id)
		case x < 88:
			ev = put(id)
		case x < 94:
			ev = put(id, string(key()), "bad-expiry")
			ev.GetPut().Items[0].ExpireTime = &timestamppb.Timestamp{Seconds: 1, Nanos: 2e9}
		default:
			msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns}, put(id, "k0", "poison"))
			if err != nil {
				tb.Fatal(err)
			}
			msg.Data = []byte{0xff, 0xff, 0xff}
			publishMsg(tb, js, msg)
			continue
		}
		publish(tb, js, ns, ev)
	}
}

// streamMsgs returns every message of the stream of ns, in order.
func streamMsgs(tb testing.TB, js jetstream.JetStream, ns string) []*jetstream.RawStreamMsg {
	tb.Helper()
	var out []*jetstream.RawStreamMsg
	seq := uint64(1)
	for {
		msgs, err := jetstreamext.GetBatch(context.Background(), js, subjects.Stream(ns), 1000, jetstreamext.GetBatchSeq(seq))
		if err != nil {
			tb.Fatal(err)
		}
		n := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, m)
			seq = m.Sequence + 1
			n++
		}
		if n == 0 {
			return out
		}
	}
}

// bySubject groups msgs by subject.
func bySubject(msgs []*jetstream.RawStreamMsg) map[string][]*jetstream.RawStreamMsg {
	out := map[string][]*jetstream.RawStreamMsg{}
	for _, m := range msgs {
		out[m.Subject] = append(out[m.Subject], m)
	}
	return out
}

// dropConsumer deletes the consumer of target, as a finished replay's.
func dropConsumer(tb testing.TB, js jetstream.JetStream, ns, target string) {
	tb.Helper()
	if err := js.DeleteConsumer(context.Background(), subjects.Stream(ns), subjects.Consumer(target)); err != nil {
		tb.Fatal(err)
	}
}

// replayInto runs a replay job of namespace ns (abstraction) into storage
// as target, checks it ends at last, and returns the target's store,
// closed at the end of the test.
func replayInto(t *testing.T, js jetstream.JetStream, ns, abstraction, target string, storage replay.Target, last uint64) replay.Store {
	t.Helper()
	ctx := context.Background()
	j, err := replay.NewJob(replay.JobConfig{JetStream: js, Namespace: ns, Target: target, Owner: "replay@test", BatchSize: 16,
		Abstraction: abstraction, Storage: storage, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	res, err := j.Run(rctx)
	if err != nil || res.StopAt != last {
		t.Fatalf("replay into %s: %+v, %v; want through %d", target, res, err, last)
	}
	st, closeStore, err := storage.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeStore() })
	return st
}
