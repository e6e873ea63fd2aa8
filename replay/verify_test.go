package replay_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prism-data/prism/replay"
)

// Two targets that applied the same changes match record for record,
// across pages and ranges whose sizes do not divide each other.
func TestVerifyIdentical(t *testing.T) {
	for _, tt := range []struct{ old, new kind }{
		{sqliteKind, postgresKind},
		{natskvKind, sqliteKind},
	} {
		t.Run(tt.old.name+"-"+tt.new.name, func(t *testing.T) {
			old, new, changes := pair(t, tt.old, tt.new, 3000)
			var phases []string
			r := verify(t, old, new, replay.WithRangeSize(97), replay.WithPageSize(128),
				replay.WithProgress(func(p replay.Progress) {
					if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
						phases = append(phases, p.Phase)
					}
				}))
			if !r.Passed() {
				t.Fatalf("identical targets did not pass:\n%s", table(r))
			}
			// Each of the 3000 records and the two special ids is there
			// unless the history deleted it or all its items expired.
			if r.OldRecords < 2500 || r.OldRecords != r.NewRecords || r.Compared != r.OldRecords || r.Matched != r.Compared {
				t.Errorf("counts: old %d, new %d, compared %d, matched %d; want equal, above 2500",
					r.OldRecords, r.NewRecords, r.Compared, r.Matched)
			}
			if want := (r.Compared + 96) / 97; r.Ranges != want || r.RangesMismatched != 0 || r.Rechecked != 0 {
				t.Errorf("ranges %d (%d mismatched), rechecked %d; want %d ranges, none mismatched or rechecked",
					r.Ranges, r.RangesMismatched, r.Rechecked, want)
			}
			if want := changes[len(changes)-1].GetSeq(); r.Checkpoint != want {
				t.Errorf("checkpoint = %d, want %d", r.Checkpoint, want)
			}
			if !slices.Equal(phases, []string{"fence", "scan"}) {
				t.Errorf("progress phases = %q, want [fence scan]", phases)
			}
		})
	}
}

// A row changed behind Prism's back shows as exactly the records it
// changed, whichever target and backend holds it.
func TestVerifyFindsCorruption(t *testing.T) {
	tests := []struct {
		name     string
		old, new kind
		// corrupt changes the old or the new target.
		corrupt                   func(t *testing.T, old, new *target)
		missing, extra, differing []string
	}{
		{
			name: "postgres value updated", old: sqliteKind, new: postgresKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `UPDATE {items} SET value = ? WHERE id = ? AND key = ?`, []byte("garbage"), []byte(recID(3)), []byte("k0"))
			},
			differing: []string{recID(3)},
		},
		{
			name: "postgres record deleted", old: sqliteKind, new: postgresKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `DELETE FROM {items} WHERE id = ?`, []byte(recID(5)))
			},
			missing: []string{recID(5)},
		},
		{
			name: "postgres record inserted", old: sqliteKind, new: postgresKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `INSERT INTO {items} (id, key, value, expire_sec, expire_nanos, rev) VALUES (?, ?, ?, NULL, 0, 7)`,
					[]byte("rec-00004x"), []byte("k"), []byte("v"))
			},
			extra: []string{"rec-00004x"},
		},
		{
			name: "postgres revision changed", old: sqliteKind, new: postgresKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `UPDATE {items} SET rev = rev + 1000000 WHERE id = ?`, []byte(recID(7)))
			},
			differing: []string{recID(7)},
		},
		{
			name: "postgres expire time set", old: sqliteKind, new: postgresKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `UPDATE {items} SET expire_sec = ? WHERE id = ? AND key = ?`,
					time.Now().Add(48*time.Hour).Unix(), []byte(recID(8)), []byte("k0"))
			},
			differing: []string{recID(8)},
		},
		{
			name: "sqlite value updated", old: postgresKind, new: sqliteKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `UPDATE {items} SET value = ? WHERE id = ? AND key = ?`, []byte("garbage"), []byte(recID(3)), []byte("k0"))
			},
			differing: []string{recID(3)},
		},
		{
			name: "old target corrupted", old: sqliteKind, new: postgresKind,
			corrupt: func(t *testing.T, old, _ *target) {
				old.exec(t, `DELETE FROM {items} WHERE id = ?`, []byte(recID(2)))
			},
			extra: []string{recID(2)},
		},
		{
			name: "empty and binary ids", old: sqliteKind, new: postgresKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `UPDATE {items} SET value = ? WHERE id = ?`, []byte("x"), []byte{})
				new.exec(t, `DELETE FROM {items} WHERE id = ?`, []byte("\x00\xff bin"))
			},
			missing:   []string{"hex:00ff2062696e"},
			differing: []string{"hex:"},
		},
		{
			name: "several at once", old: postgresKind, new: sqliteKind,
			corrupt: func(t *testing.T, _, new *target) {
				new.exec(t, `UPDATE {items} SET value = ? WHERE id = ? AND key = ?`, []byte("garbage"), []byte(recID(1)), []byte("k0"))
				new.exec(t, `UPDATE {items} SET value = ? WHERE id = ? AND key = ?`, []byte("garbage"), []byte(recID(9)), []byte("k0"))
				new.exec(t, `DELETE FROM {items} WHERE id = ?`, []byte(recID(6)))
				new.exec(t, `INSERT INTO {items} (id, key, value, expire_sec, expire_nanos, rev) VALUES (?, ?, ?, NULL, 0, 7)`,
					[]byte("zzz"), []byte("k"), []byte("v"))
			},
			missing:   []string{recID(6)},
			extra:     []string{"zzz"},
			differing: []string{recID(1), recID(9)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new, _ := pair(t, tt.old, tt.new, 1500)
			tt.corrupt(t, old, new)
			r := verify(t, old, new, replay.WithRangeSize(100), replay.WithPageSize(256))
			checkDiffs(t, r, tt.missing, tt.extra, tt.differing)
		})
	}
}

// checkDiffs checks that r reports exactly these differences, nothing
// unsettled, and everything else matched.
func checkDiffs(t *testing.T, r replay.Report, missing, extra, differing []string) {
	t.Helper()
	ok := slices.Equal(r.MissingIDs, nonNil(missing)) && slices.Equal(r.ExtraIDs, nonNil(extra)) &&
		slices.Equal(r.DifferingIDs, nonNil(differing)) &&
		r.Missing == int64(len(missing)) && r.Extra == int64(len(extra)) && r.Differing == int64(len(differing)) &&
		r.Unsettled == 0 && r.Matched == r.Compared-int64(len(missing)+len(extra)+len(differing))
	if !ok || r.Passed() != (len(missing)+len(extra)+len(differing) == 0) {
		t.Errorf("want missing %q, extra %q, differing %q, nothing unsettled, the rest matched; got\n%s",
			missing, extra, differing, table(r))
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Verify waits for a target that is behind the other one, and compares
// both at the checkpoint the leader had.
func TestVerifyFenceWaits(t *testing.T) {
	old, new := openSQLite(t), openSQLite(t)
	changes := history(300, 1)
	applyAll(t, changes, old)
	applyAll(t, changes[:len(changes)-50], new)
	go func() {
		time.Sleep(200 * time.Millisecond)
		applyAll(t, changes[len(changes)-50:], new)
	}()
	r := verify(t, old, new)
	if !r.Passed() || r.Checkpoint != changes[len(changes)-1].GetSeq() {
		t.Fatalf("want a pass at checkpoint %d, got\n%s", changes[len(changes)-1].GetSeq(), table(r))
	}
}

// A target that does not catch up fails the fence with ErrFenceTimeout.
func TestVerifyFenceTimeout(t *testing.T) {
	old, new := openSQLite(t), openSQLite(t)
	changes := history(50, 1)
	applyAll(t, changes, old)
	applyAll(t, changes[:10], new)
	start := time.Now()
	_, err := replay.Verify(context.Background(), old.store, new.store, replay.WithFenceTimeout(100*time.Millisecond))
	if !errors.Is(err, replay.ErrFenceTimeout) {
		t.Fatalf("err = %v, want ErrFenceTimeout", err)
	}
	if time.Since(start) > 10*time.Second { // generous: the bound is 100 ms
		t.Errorf("the fence timed out after %v", time.Since(start))
	}
}

func TestVerifyCancelled(t *testing.T) {
	old, new, _ := pair(t, sqliteKind, sqliteKind, 200)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := replay.Verify(ctx, old.store, new.store); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestVerifyOptions(t *testing.T) {
	old := openSQLite(t)
	for name, opt := range map[string]replay.VerifyOption{
		"fence timeout 0":   replay.WithFenceTimeout(0),
		"range size 0":      replay.WithRangeSize(0),
		"page size 0":       replay.WithPageSize(0),
		"sample ids -1":     replay.WithSampleIDs(-1),
		"recheck rounds -1": replay.WithRecheckRounds(-1),
		"max rechecks -1":   replay.WithMaxRechecks(-1),
		"clock skew -1":     replay.WithClockSkew(-1),
		"nil progress":      replay.WithProgress(nil),
	} {
		if _, err := replay.Verify(context.Background(), old.store, old.store, opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := replay.Verify(context.Background(), old.store, nil); err == nil {
		t.Error("nil source: no error")
	}
}
