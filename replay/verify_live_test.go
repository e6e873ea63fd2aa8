package replay_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
)

// liveWriter applies a stream of changes to two targets while a test
// verifies them: to the leader at once, to the follower lag batches later,
// as a projector that is behind would. A sweeper removes expired items from
// the leader only, with its own clock.
type liveWriter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	touched map[string]bool
	batches int
	err     error
}

// startWriter starts writing changes with sequences after seq to leader
// and follower. It never touches rec-00000 to rec-00009.
func startWriter(leader, follower *target, seq uint64, lag int) *liveWriter {
	ctx, cancel := context.WithCancel(context.Background())
	w := &liveWriter{cancel: cancel, touched: make(map[string]bool)}
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		w.write(ctx, leader, follower, seq, lag)
	}()
	go func() {
		defer w.wg.Done()
		for ctx.Err() == nil {
			if _, err := leader.store.SweepExpired(context.Background()); err != nil {
				w.fail(fmt.Errorf("sweep %s: %w", leader.name, err))
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w
}

func (w *liveWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *liveWriter) write(ctx context.Context, leader, follower *target, seq uint64, lag int) {
	rng := rand.New(rand.NewPCG(7, 8))
	var queue [][]*prismv1.KeyValueChange
	apply := func(tg *target, b []*prismv1.KeyValueChange) bool {
		// Not ctx: the follower must get every batch the leader got.
		if err := tg.store.ApplyKeyValue(context.Background(), b, b[len(b)-1].GetSeq()); err != nil {
			w.fail(fmt.Errorf("apply to %s: %w", tg.name, err))
			return false
		}
		return true
	}
	defer func() {
		for _, b := range queue {
			if !apply(follower, b) {
				return
			}
		}
	}()
	for n := 0; ctx.Err() == nil; n++ {
		var batch []*prismv1.KeyValueChange
		for range 1 + rng.IntN(20) {
			seq++
			id := recID(10 + rng.IntN(2990))
			if rng.IntN(5) == 0 {
				id = fmt.Sprintf("live-%04d", rng.IntN(500))
			}
			w.mu.Lock()
			w.touched[id] = true
			w.mu.Unlock()
			switch r := rng.IntN(20); {
			case r == 0:
				batch = append(batch, delChange(seq, id))
			case r <= 2:
				batch = append(batch, delChange(seq, id, "k1"))
			case r == 3:
				batch = append(batch, putChange(seq, id))
			case r <= 7:
				// Expires during the verification, and the sweeper on the
				// leader removes it.
				ttl := time.Duration(20+rng.IntN(300)) * time.Millisecond
				batch = append(batch, putChange(seq, id, itemExpiring("k2", fmt.Sprint(seq), time.Now().Add(ttl))))
			default:
				batch = append(batch, putChange(seq, id, item("k0", fmt.Sprint(seq)), item("k1", "x")))
			}
		}
		if !apply(leader, batch) {
			return
		}
		queue = append(queue, batch)
		if len(queue) > lag {
			if !apply(follower, queue[0]) {
				return
			}
			queue = queue[1:]
		}
		w.mu.Lock()
		w.batches++
		w.mu.Unlock()
		time.Sleep(200 * time.Microsecond)
	}
}

// stop stops the writer once the follower has every batch, and returns
// the ids it touched.
func (w *liveWriter) stop(t testing.TB) map[string]bool {
	t.Helper()
	w.cancel()
	w.wg.Wait()
	if w.err != nil {
		t.Fatalf("live writer: %v", w.err)
	}
	t.Logf("live writer applied %d batches", w.batches)
	return w.touched
}

// Writes applied during the verification, to a lagging target, with
// items expiring and swept meanwhile, cause no false difference: only the
// real ones, made before, are reported.
func TestVerifyLiveWrites(t *testing.T) {
	newRows := func(t *testing.T, old, new *target) {
		new.exec(t, `UPDATE {items} SET value = ? WHERE id = ? AND key = ?`, []byte("garbage"), []byte(recID(3)), []byte("k0"))
		new.exec(t, `DELETE FROM {items} WHERE id = ?`, []byte(recID(5)))
		old.exec(t, `DELETE FROM {items} WHERE id = ?`, []byte(recID(8)))
	}
	tests := []struct {
		name      string
		old, new  kind
		records   int
		newLagged bool
		// corrupt makes the real differences, on records the writer
		// never touches.
		corrupt                   func(t *testing.T, old, new *target)
		missing, extra, differing []string
	}{
		{"new lags", sqliteKind, postgresKind, 3000, true, newRows, []string{recID(5)}, []string{recID(8)}, []string{recID(3)}},
		{"old lags", postgresKind, sqliteKind, 3000, false, newRows, []string{recID(5)}, []string{recID(8)}, []string{recID(3)}},
		// NATS KV lists every record for each page while batches commit
		// (see natskv.Store.ExportRecords): fewer records keep it fast.
		{"natskv lags", sqliteKind, natskvKind, 1000, true, func(t *testing.T, old, _ *target) {
			old.exec(t, `UPDATE {items} SET value = ? WHERE id = ? AND key = ?`, []byte("garbage"), []byte(recID(3)), []byte("k0"))
			old.exec(t, `DELETE FROM {items} WHERE id = ?`, []byte(recID(8)))
		}, nil, []string{recID(8)}, []string{recID(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new, changes := pair(t, tt.old, tt.new, tt.records)
			tt.corrupt(t, old, new)

			leader, follower := old, new
			if !tt.newLagged {
				leader, follower = new, old
			}
			w := startWriter(leader, follower, changes[len(changes)-1].GetSeq(), 30)
			time.Sleep(20 * time.Millisecond) // let the follower fall behind
			r := verify(t, old, new, replay.WithRangeSize(100), replay.WithPageSize(200))
			touched := w.stop(t)
			t.Logf("during writes:\n%s", table(r))

			if !slices.Equal(r.MissingIDs, nonNil(tt.missing)) || !slices.Equal(r.ExtraIDs, nonNil(tt.extra)) ||
				!slices.Equal(r.DifferingIDs, nonNil(tt.differing)) || r.Missing != int64(len(tt.missing)) ||
				r.Extra != int64(len(tt.extra)) || r.Differing != int64(len(tt.differing)) {
				t.Errorf("want exactly missing %q, extra %q, differing %q", tt.missing, tt.extra, tt.differing)
			}
			for _, id := range r.UnsettledIDs {
				if !touched[id] {
					t.Errorf("record %s unsettled but never written during the verification", id)
				}
			}
			if sum := r.Matched + r.Missing + r.Extra + r.Differing + r.Unsettled; sum != r.Compared {
				t.Errorf("matched + missing + extra + differing + unsettled = %d, compared %d", sum, r.Compared)
			}
			if r.Rechecked == 0 {
				t.Error("no record was rechecked: the writes did not reach the scan")
			}

			// Quiet again, both targets equal but for the real differences.
			r = verify(t, old, new)
			checkDiffs(t, r, tt.missing, tt.extra, tt.differing)
		})
	}
}
