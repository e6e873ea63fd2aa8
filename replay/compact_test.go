package replay_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

func compact(tb testing.TB, js jetstream.JetStream, ns string, opts ...replay.CompactOption) replay.CompactStats {
	tb.Helper()
	stats, err := replay.Compact(context.Background(), js, ns, append([]replay.CompactOption{replay.WithCompactLogger(discard)}, opts...)...)
	if err != nil {
		tb.Fatalf("Compact: %v (stats %+v)", err, stats)
	}
	return stats
}

// Random histories of puts, deletes of keys and records, expiring items and
// poison: the state each record is rolled up into is what a projection of
// the whole stream shows, and a new projector replaying the compacted
// stream builds the same records, as does the old one going on.
func TestCompactFoldsLikeTheProjector(t *testing.T) {
	js := startJetStream(t)
	for seed := range 8 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ns := namespace(t, js, fmt.Sprintf("prop%d", seed))
			r := rand.New(rand.NewPCG(uint64(seed), 6))
			old := openStore(t)
			for round := range 2 { // the second round folds replaces too
				randomEvents(t, js, ns, r, 150, 6)
				project(t, js, ns, "old", old)
				want := readAll(t, old)

				// Odd seeds fold two records per scan of the stream.
				opts := []replay.CompactOption{replay.WithTombstoneRetention(0)}
				if seed%2 == 1 {
					opts = append(opts, replay.WithCompactFoldLimit(2))
				}
				stats := compact(t, js, ns, opts...)
				if stats.RolledUp == 0 || stats.SkippedWritten+stats.SkippedRecent+stats.SkippedTooLarge != 0 {
					t.Fatalf("round %d: stats %+v", round, stats)
				}
				// Each record subject holds one replace whose items are
				// what the projection shows (a tombstone: nothing).
				rolled := map[string]record{}
				for subj, msgs := range bySubject(streamMsgs(t, js, ns)) {
					if len(msgs) != 1 {
						t.Fatalf("round %d: %s holds %d messages after compaction", round, subj, len(msgs))
					}
					ev, err := subjects.DecodeKeyValueEvent(subj, msgs[0].Header, msgs[0].Data)
					if err != nil {
						t.Fatal(err)
					}
					if ev.GetReplace() == nil {
						continue // a record with one event: nothing to roll up
					}
					if len(ev.GetReplace().GetItems()) == 0 {
						continue
					}
					rec := record{items: map[string]string{}, rev: msgs[0].Sequence}
					for _, it := range ev.GetReplace().GetItems() {
						rec.items[string(it.GetKey())] = itemString(it)
					}
					rolled[string(ev.GetId())] = rec
				}
				for id, rec := range want {
					if _, ok := rolled[id]; !ok {
						rolled[id] = rec // kept as it was
					}
				}
				sameRecords(t, "rolled-up states", rolled, want, false)

				fresh := openStore(t)
				project(t, js, ns, fmt.Sprint("fresh", round), fresh)
				got := readAll(t, fresh)
				sameRecords(t, "new projector", got, want, false)
				// A finished replay's consumer would hold the next
				// round's compaction back.
				dropConsumer(t, js, ns, fmt.Sprint("fresh", round))
				project(t, js, ns, "old", old)
				sameRecords(t, "old projector after compaction", readAll(t, old), got, true)
				// A revision is the sequence of the record's one message.
				for id, rec := range got {
					if subj := subjects.KeyValueEvent(ns, []byte(id)); rec.rev != lastSeqOf(t, js, ns, subj) {
						t.Fatalf("record %s: revision %d, want the seq of its message", id, rec.rev)
					}
				}
			}
		})
	}
}

func lastSeqOf(tb testing.TB, js jetstream.JetStream, ns, subj string) uint64 {
	tb.Helper()
	s, err := js.Stream(context.Background(), subjects.Stream(ns))
	if err != nil {
		tb.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subj)
	if err != nil {
		tb.Fatalf("last message of %s: %v", subj, err)
	}
	return m.Sequence
}

// A write stored between the pass's read and its rollup makes JetStream
// refuse the rollup: the write is kept and the record is counted as
// skipped; the next pass rolls it up with the write.
func TestCompactRefusedWhenWrittenMeanwhile(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "race")
	for i := range 3 {
		publish(t, js, ns, put("r", "k", fmt.Sprint(i), fmt.Sprint("only", i), "x"))
	}
	late := false
	stats := compact(t, js, ns, replay.WithHook(func(stage, subj string) {
		if stage == "rollup" && !late {
			late = true
			publish(t, js, ns, put("r", "k", "late"))
		}
	}))
	if stats.SkippedWritten != 1 || stats.RolledUp != 0 || stats.MessagesRemoved != 0 {
		t.Fatalf("stats %+v, want the rollup skipped", stats)
	}
	if n := len(streamMsgs(t, js, ns)); n != 4 {
		t.Fatalf("stream holds %d messages, want the 4 written", n)
	}
	stats = compact(t, js, ns)
	if stats.RolledUp != 1 || stats.MessagesRemoved != 4 || stats.SkippedWritten != 0 {
		t.Fatalf("second pass stats %+v", stats)
	}
	st := openStore(t)
	project(t, js, ns, "fresh", st)
	got := readAll(t, st)["r"].items
	if got["k"] != "late" || got["only0"] != "x" || got["only2"] != "x" || len(got) != 4 {
		t.Fatalf("record r = %v, want k=late and only0..2", got)
	}
}

// A writer keeps writing the records being compacted: every acknowledged
// write is in the final state, whatever the passes did meanwhile.
func TestCompactRacingWriter(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "racing")
	type write struct {
		seq            uint64
		id, key, value string
	}
	var (
		mu     sync.Mutex
		writes []write
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := range 1500 {
			w := write{id: fmt.Sprint("r", i%4), key: fmt.Sprint("k", i%7), value: fmt.Sprint(i)}
			msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns}, put(w.id, w.key, w.value))
			if err != nil {
				t.Error(err)
				return
			}
			ack, err := js.PublishMsg(context.Background(), msg)
			if err != nil {
				t.Error(err)
				return
			}
			w.seq = ack.Sequence
			mu.Lock()
			writes = append(writes, w)
			mu.Unlock()
		}
	}()
	var total replay.CompactStats
	passes := 0
	for running := true; running; passes++ {
		select {
		case <-done:
			running = false
		default:
		}
		s := compact(t, js, ns)
		total.RolledUp += s.RolledUp
		total.SkippedWritten += s.SkippedWritten
	}
	t.Logf("%d passes: %d rollups, %d refused as written meanwhile", passes, total.RolledUp, total.SkippedWritten)
	if total.RolledUp == 0 {
		t.Fatal("no pass rolled anything up while the writer wrote")
	}
	want := map[string]record{}
	for _, w := range writes { // in the order acknowledged, which is seq order
		if want[w.id].items == nil {
			want[w.id] = record{items: map[string]string{}}
		}
		want[w.id].items[w.key] = w.value
	}
	st := openStore(t)
	project(t, js, ns, "fresh", st)
	sameRecords(t, "after racing compactions", readAll(t, st), want, false)
}

// A projector stopped at a checkpoint holds compaction back for the
// records it has not acknowledged; it resumes and ends with exactly the
// state of a projector that never stopped, and compaction then goes on.
func TestCompactLaggingProjectorResumes(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "lagging")
	r := rand.New(rand.NewPCG(3, 4))
	randomEvents(t, js, ns, r, 300, 8)
	slow := openStore(t)
	project(t, js, ns, "slow", slow) // stops here
	randomEvents(t, js, ns, r, 300, 8)
	oracle := openStore(t)
	project(t, js, ns, "oracle", oracle)

	// Records the stopped projector has not acknowledged are left alone:
	// rolling them up would take events from under it.
	stats := compact(t, js, ns, replay.WithTombstoneRetention(0))
	if stats.SkippedUnacked == 0 {
		t.Fatalf("first pass with a lagging consumer: stats %+v, want records skipped as unacknowledged", stats)
	}
	project(t, js, ns, "slow", slow)
	stats = compact(t, js, ns, replay.WithTombstoneRetention(0))
	if stats.RolledUp == 0 || stats.SkippedUnacked != 0 {
		t.Fatalf("second pass, every consumer caught up: stats %+v", stats)
	}
	project(t, js, ns, "slow", slow)
	got := readAll(t, slow)
	sameRecords(t, "resumed projector", got, readAll(t, oracle), false)
	fresh := openStore(t)
	project(t, js, ns, "fresh", fresh)
	sameRecords(t, "resumed projector", got, readAll(t, fresh), true)
}

// Each of N keys written 100 times, compacted: the stream holds N messages
// and a new projector applies N changes, as many as for keys written once.
func TestCompactBoundsReplay(t *testing.T) {
	const keys, writes = 200, 100
	js := startJetStream(t)
	once, many := namespace(t, js, "once"), namespace(t, js, "many")
	publishKeys(t, js, once, keys, 1, strconv.Itoa)
	publishKeys(t, js, many, keys, writes, strconv.Itoa)
	stats := compact(t, js, many)
	if stats.Subjects != keys || stats.RolledUp != keys || stats.MessagesRemoved != keys*writes {
		t.Fatalf("stats %+v, want %d records of %d messages rolled up", stats, keys, writes)
	}
	if n := streamInfo(t, js, many).State.Msgs; n != keys {
		t.Fatalf("compacted stream holds %d messages, want %d", n, keys)
	}
	applied := map[string]int64{}
	for _, ns := range []string{once, many} {
		st := &counting{Store: openStore(t)}
		project(t, js, ns, "fresh", st)
		applied[ns] = st.applied.Load()
		state := readAll(t, st.Store)
		if len(state) != keys || state["key0"].items["v"] != fmt.Sprint(writesOf(ns, writes)-1) {
			t.Fatalf("%s: %d records, key0 = %v", ns, len(state), state["key0"])
		}
	}
	if applied[once] != keys || applied[many] != keys {
		t.Fatalf("changes applied by a new projector: written once %d, overwritten %dx and compacted %d; want %d each",
			applied[once], writes, applied[many], keys)
	}
}

func writesOf(ns string, writes int) int {
	if ns == "once" {
		return 1
	}
	return writes
}

// publishKeys writes records key0..key<keys-1>, each times times: item v
// set to value(0), value(1), …, value(times-1), round-robin, published
// asynchronously.
func publishKeys(tb testing.TB, js jetstream.JetStream, ns string, keys, times int, value func(i int) string) {
	tb.Helper()
	const window = 4096 // acknowledgements awaited at once
	wait := func() {
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(catchUpTimeout):
			tb.Fatal("async publishes not acknowledged in time")
		}
	}
	for i := range times {
		for k := range keys {
			msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns}, put(fmt.Sprint("key", k), "v", value(i)))
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := js.PublishMsgAsync(msg); err != nil {
				tb.Fatal(err)
			}
			if (i*keys+k+1)%window == 0 {
				wait()
			}
		}
	}
	wait()
}

// A deleted record keeps one tombstone until every consumer has
// acknowledged it and it is older than the retention; then nothing of it is
// left, and a write racing the purge is kept. Records a consumer has not
// acknowledged are not rolled up, and the stream's last message is never
// purged.
func TestCompactPurgesTombstonesAllConsumersAcked(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "tomb")
	publish(t, js, ns, put("live", "k", "v"))
	publish(t, js, ns, put("gone", "k", "v"))
	a, b := openStore(t), openStore(t)
	project(t, js, ns, "a", a)
	project(t, js, ns, "b", b)
	publish(t, js, ns, del("gone"))
	publish(t, js, ns, del("never")) // a delete alone on its subject
	publish(t, js, ns, put("tail", "k", "v"))

	clock := time.Now()
	now := func() time.Time { return clock }
	opts := []replay.CompactOption{replay.WithCompactClock(now)}
	// Neither consumer has seen the deletes: gone is left as it is.
	stats := compact(t, js, ns, opts...)
	if stats.RolledUp != 0 || stats.SkippedUnacked != 1 || stats.TombstonesPurged != 0 {
		t.Fatalf("first pass %+v, want gone skipped as unacknowledged, nothing purged", stats)
	}
	subjectsLeft := func() []string {
		var out []string
		for subj := range bySubject(streamMsgs(t, js, ns)) {
			out = append(out, strings.TrimPrefix(subj, "prism."+ns+".events.kv."))
		}
		return out
	}
	if got := subjectsLeft(); len(got) != 4 {
		t.Fatalf("subjects left %q, want live, gone, never and tail", got)
	}

	// One consumer acknowledged the deletes, the other did not.
	project(t, js, ns, "a", a)
	if stats := compact(t, js, ns, append(opts, replay.WithTombstoneRetention(0))...); stats.TombstonesPurged != 0 || stats.RolledUp != 0 {
		t.Fatalf("with consumer b behind: %+v, want nothing rolled up or purged", stats)
	}
	// Both did: gone is rolled up into an empty replace, but the
	// tombstones are younger than the retention.
	project(t, js, ns, "b", b)
	if stats := compact(t, js, ns, opts...); stats.RolledUp != 1 || stats.TombstonesPurged != 0 {
		t.Fatalf("both caught up: %+v, want gone rolled up, nothing purged", stats)
	}
	publish(t, js, ns, put("tail", "k", "v2")) // the replace is not the last message
	project(t, js, ns, "a", a)
	project(t, js, ns, "b", b)
	if stats := compact(t, js, ns, append(opts, replay.WithoutTombstonePurge(), replay.WithTombstoneRetention(0))...); stats.TombstonesPurged != 0 {
		t.Fatalf("purged %d tombstones with purging off", stats.TombstonesPurged)
	}

	// A day later they go; a write to gone racing the purge stays.
	clock = clock.Add(replay.DefaultTombstoneRetention + time.Minute)
	stats = compact(t, js, ns, append(opts, replay.WithHook(func(stage, subj string) {
		if stage == "purge" && strings.HasSuffix(subj, ".gone") {
			publish(t, js, ns, put("gone", "k", "again"))
		}
	}))...)
	if stats.TombstonesPurged != 2 || stats.MessagesRemoved < 2 {
		t.Fatalf("pass a day later %+v, want 2 tombstones purged", stats)
	}
	msgs := bySubject(streamMsgs(t, js, ns))
	if len(msgs) != 3 || len(msgs[subjects.KeyValueEvent(ns, []byte("gone"))]) != 1 || len(msgs[subjects.KeyValueEvent(ns, []byte("live"))]) != 1 {
		t.Fatalf("subjects left %q, want live, tail and the new write to gone", subjectsLeft())
	}
	// Every projection, old or new, ends with live, tail and the new gone.
	want := map[string]record{"live": {items: map[string]string{"k": "v"}}, "gone": {items: map[string]string{"k": "again"}}, "tail": {items: map[string]string{"k": "v2"}}}
	fresh := openStore(t)
	for target, st := range map[string]*sqlite.Store{"a": a, "b": b, "fresh": fresh} {
		project(t, js, ns, target, st)
		sameRecords(t, "projection "+target, readAll(t, st), want, false)
	}
}

// The stream's last message is never purged, so a projector stopping at
// the stream's last sequence reaches it.
func TestCompactKeepsTheLastMessage(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "last")
	publish(t, js, ns, put("gone", "k", "v"))
	delSeq := publish(t, js, ns, del("gone"))
	st := openStore(t)
	project(t, js, ns, "a", st)
	clock := time.Now().Add(replay.DefaultTombstoneRetention + time.Minute)
	compact(t, js, ns, replay.WithCompactClock(func() time.Time { return clock }), replay.WithTombstoneRetention(0))
	project(t, js, ns, "a", st)
	compact(t, js, ns, replay.WithCompactClock(func() time.Time { return clock }), replay.WithTombstoneRetention(0))
	info := streamInfo(t, js, ns)
	if info.State.Msgs != 1 || info.State.LastSeq != info.State.FirstSeq {
		t.Fatalf("stream state %+v: want its last message kept", info.State)
	}
	// The one kept is the newest: the record's tombstone, stored after the
	// delete, that leaves the record deleted.
	msgs := streamMsgs(t, js, ns)
	if len(msgs) != 1 {
		t.Fatalf("read %d messages, want 1", len(msgs))
	}
	if seq := msgs[0].Sequence; seq != info.State.LastSeq || seq <= delSeq {
		t.Fatalf("kept seq %d, want the stream's last (%d), stored after the delete at %d", seq, info.State.LastSeq, delSeq)
	}
	ev, err := subjects.DecodeKeyValueEvent(msgs[0].Subject, msgs[0].Header, msgs[0].Data)
	if err != nil || ev == nil {
		t.Fatalf("kept message: %v, %v", ev, err)
	}
	if string(ev.GetId()) != "gone" || !leavesNothing(ev) {
		t.Fatalf("kept message %v: want the tombstone of record gone", ev)
	}
	fresh := openStore(t)
	project(t, js, ns, "fresh", fresh)
	if got, ok := readAll(t, fresh)["gone"]; ok {
		t.Fatalf("a new projection of the kept message shows record gone = %v, want it deleted", got)
	}
}

// leavesNothing reports whether ev leaves its record empty: a delete of
// the whole record, or a replace with no items.
func leavesNothing(ev *prismv1.KeyValueEvent) bool {
	switch ch := ev.GetChange().(type) {
	case *prismv1.KeyValueEvent_Delete:
		return len(ch.Delete.GetKeys()) == 0
	case *prismv1.KeyValueEvent_Replace:
		return len(ch.Replace.GetItems()) == 0
	}
	return false
}

func TestCompactErrors(t *testing.T) {
	js := startJetStream(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.Stream("old"), Subjects: subjects.StreamSubjects("old")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ns      string
		opts    []replay.CompactOption
		wantErr error
	}{
		{"stream without rollups", "old", nil, replay.ErrRollupNotAllowed},
		{"no stream", "missing", nil, jetstream.ErrStreamNotFound},
		{"no stream is no namespace", "missing", nil, status.ErrNamespaceNotFound},
		{"invalid namespace", "Bad.Name", nil, subjects.ErrInvalidNamespace},
		{"negative retention", "old", []replay.CompactOption{replay.WithTombstoneRetention(-time.Second)}, replay.ErrInvalidCompactOption},
		{"zero concurrency", "old", []replay.CompactOption{replay.WithCompactConcurrency(0)}, replay.ErrInvalidCompactOption},
		{"zero fold limit", "old", []replay.CompactOption{replay.WithCompactFoldLimit(0)}, replay.ErrInvalidCompactOption},
		{"nil clock", "old", []replay.CompactOption{replay.WithCompactClock(nil)}, replay.ErrInvalidCompactOption},
		{"ratio 1", "old", []replay.CompactOption{replay.WithCompactRatio(1)}, replay.ErrInvalidCompactOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := replay.Compact(ctx, js, tt.ns, tt.opts...); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// A stream longer than one read of the scan returns is read whole.
func TestCompactLongHistory(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "long")
	publishKeys(t, js, ns, 2, 5000, strconv.Itoa)
	publish(t, js, ns, put("key0", "other", "x"))
	stats := compact(t, js, ns)
	if stats.RolledUp != 2 || stats.MessagesRemoved != 10001 {
		t.Fatalf("stats %+v, want two records of 10001 messages rolled up", stats)
	}
	st := openStore(t)
	project(t, js, ns, "fresh", st)
	if got := readAll(t, st)["key0"].items; len(got) != 2 || got["v"] != "4999" || got["other"] != "x" {
		t.Fatalf("record key0 = %v, want v=4999 other=x", got)
	}
}

// A record with a write carrying an idempotency token is left alone within
// the stream's duplicate window: a retried write must find its event
// where JetStream's duplicate answer says it is.
func TestCompactSkipsRecentIdempotentWrites(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "idem")
	publish(t, js, ns, put("r", "k", "1"))
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns, IdempotencyToken: "tok"}, put("r", "k", "2"))
	if err != nil {
		t.Fatal(err)
	}
	msg.Header.Set(subjects.HeaderMsgID, "tok")
	publishMsg(t, js, msg)
	// A later write without a token does not end the window of the one
	// before it.
	publish(t, js, ns, put("r", "k", "3"))
	if stats := compact(t, js, ns); stats.SkippedRecent != 1 || stats.RolledUp != 0 {
		t.Fatalf("stats %+v, want the record skipped as recent", stats)
	}
	later := time.Now().Add(streamInfo(t, js, ns).Config.Duplicates + time.Second)
	if stats := compact(t, js, ns, replay.WithCompactClock(func() time.Time { return later })); stats.SkippedRecent != 0 || stats.RolledUp != 1 {
		t.Fatalf("stats after the window %+v, want the record rolled up", stats)
	}
}

// A record whose state does not fit in one message is left as it is.
func TestCompactSkipsTooLargeRecords(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "large")
	big := strings.Repeat("x", 400<<10)
	for i := range 3 {
		publish(t, js, ns, put("r", fmt.Sprint("k", i), big))
	}
	stats := compact(t, js, ns)
	if stats.SkippedTooLarge != 1 || stats.RolledUp != 0 || stats.MessagesRemoved != 0 {
		t.Fatalf("stats %+v, want the record skipped as too large", stats)
	}
	if n := len(streamMsgs(t, js, ns)); n != 3 {
		t.Fatalf("stream holds %d messages, want 3", n)
	}
}
