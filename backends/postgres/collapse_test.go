package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/postgres"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// row is one stored row as dump returns it: items, expired or not, and
// each record's revision, so the comparison sees what the API hides.
type row struct {
	table, id, key, value string
	expireSec             *int64
	expireNanos, revision int64
}

func (r row) String() string {
	exp := "-"
	if r.expireSec != nil {
		exp = fmt.Sprintf("%d.%09d", *r.expireSec, r.expireNanos)
	}
	return fmt.Sprintf("%s(%q %q %q exp %s rev %d)", r.table, r.id, r.key, r.value, exp, r.revision)
}

// dump returns every item row of the store and each record's revision, in
// order.
func dump(t testing.TB, conn *pgx.Conn, s *postgres.Store) []row {
	t.Helper()
	ctx := context.Background()
	items := pgx.Identifier{s.Schema(), "items"}.Sanitize()
	// A record is its rows' largest rev (ADR 011): which row carries it
	// may differ between a collapsed batch and one-by-one applies.
	rows, err := conn.Query(ctx, `
		SELECT 'item', id, key, value, expire_sec, expire_nanos::int8, 0::int8 FROM `+items+`
		UNION ALL
		SELECT 'record', id, ''::bytea, ''::bytea, NULL, 0, max(rev) FROM `+items+` GROUP BY id
		ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var id, key, value []byte
		err := r.Scan(&x.table, &id, &key, &value, &x.expireSec, &x.expireNanos, &x.revision)
		x.id, x.key, x.value = string(id), string(key), string(value)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkCollapse applies setup one change at a time to two stores, then batch
// as one batch to the first and one change at a time to the second, and
// requires the same rows in both: collapsing must not change the result.
func checkCollapse(t *testing.T, conn *pgx.Conn, a, b *postgres.Store, setup, batch []*prismv1.KeyValueChange) {
	t.Helper()
	for _, c := range setup {
		apply(t, a, c.GetSeq(), c)
		apply(t, b, c.GetSeq(), c)
	}
	if len(batch) == 0 {
		return
	}
	through := batch[len(batch)-1].GetSeq()
	apply(t, a, through, batch...)
	for _, c := range batch {
		apply(t, b, c.GetSeq(), c)
	}
	got, want := dump(t, conn, a), dump(t, conn, b)
	if !slices.EqualFunc(got, want, func(x, y row) bool { return x.String() == y.String() }) {
		t.Fatalf("batch applied at once:\n%v\none change at a time:\n%v", got, want)
	}
}

func TestBatchCollapseMatchesOneByOne(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name         string
		setup, batch []*prismv1.KeyValueChange
		want         []string // rows of the result, as row.String
	}{
		{
			name:  "put, delete record, put again",
			batch: []*prismv1.KeyValueChange{put(1, "a", item("k", "1"), item("j", "1")), del(2, "a"), put(3, "a", item("k", "3"))},
			want:  []string{`item("a" "k" "3" exp - rev 0)`, `record("a" "" "" exp - rev 3)`},
		},
		{
			name:  "stored record deleted then put again loses its other items",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("old", "1"), item("k", "1"))},
			batch: []*prismv1.KeyValueChange{del(2, "a"), put(3, "a", item("k", "3"))},
			want:  []string{`item("a" "k" "3" exp - rev 0)`, `record("a" "" "" exp - rev 3)`},
		},
		{
			name:  "item delete then put of the same key",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("k", "1"))},
			batch: []*prismv1.KeyValueChange{del(2, "a", "k"), put(3, "a", item("k", "3"))},
			want:  []string{`item("a" "k" "3" exp - rev 0)`, `record("a" "" "" exp - rev 3)`},
		},
		{
			name:  "put then item delete of the same key drops the record",
			batch: []*prismv1.KeyValueChange{put(1, "a", item("k", "1")), del(2, "a", "k")},
		},
		{
			name:  "put then item delete keeps a stored item and moves the revision",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("stored", "1"))},
			batch: []*prismv1.KeyValueChange{put(2, "a", item("k", "2")), del(3, "a", "k")},
			want:  []string{`item("a" "stored" "1" exp - rev 0)`, `record("a" "" "" exp - rev 3)`},
		},
		{
			name:  "deleting the last stored item drops the record",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("k", "1")), put(2, "b", item("k", "1"))},
			batch: []*prismv1.KeyValueChange{del(3, "a", "k", "missing"), del(4, "b", "missing")},
			want:  []string{`item("b" "k" "1" exp - rev 0)`, `record("b" "" "" exp - rev 4)`},
		},
		{
			name:  "empty put moves only an existing record's revision",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("k", "1"))},
			batch: []*prismv1.KeyValueChange{put(2, "a"), put(3, "ghost"), del(4, "b"), put(5, "b")},
			want:  []string{`item("a" "k" "1" exp - rev 0)`, `record("a" "" "" exp - rev 2)`},
		},
		{
			name:  "same key twice in one put and across puts: last wins, expiry too",
			batch: []*prismv1.KeyValueChange{put(1, "a", itemExpiring("k", "1", exp), item("k", "2")), put(2, "a", itemExpiring("k", "3", exp))},
			want:  []string{`item("a" "k" "3" exp 1893456000.123456789 rev 0)`, `record("a" "" "" exp - rev 2)`},
		},
		{
			name:  "delete, put, delete, put of many records interleaved",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("x", "0")), put(2, "b", item("x", "0"))},
			batch: []*prismv1.KeyValueChange{
				put(3, "a", item("y", "3")), del(4, "b"), del(5, "a", "x"), put(6, "b", item("z", "6")),
				del(7, "a"), put(8, "c", item("k", "8")), put(9, "a", item("x", "9")), del(10, "c", "k"),
			},
			want: []string{
				`item("a" "x" "9" exp - rev 0)`, `item("b" "z" "6" exp - rev 0)`,
				`record("a" "" "" exp - rev 9)`, `record("b" "" "" exp - rev 6)`,
			},
		},
		{
			name:  "replace drops the stored items it does not name",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("old", "1"), item("k", "1"))},
			batch: []*prismv1.KeyValueChange{put(2, "a", item("j", "2")), replace(3, "a", item("k", "3"), itemExpiring("n", "3", exp))},
			want: []string{
				`item("a" "k" "3" exp - rev 0)`, `item("a" "n" "3" exp 1893456000.123456789 rev 0)`,
				`record("a" "" "" exp - rev 3)`,
			},
		},
		{
			name:  "empty replace drops the record, a put after it starts a new one",
			setup: []*prismv1.KeyValueChange{put(1, "a", item("k", "1")), put(2, "b", item("k", "1"))},
			batch: []*prismv1.KeyValueChange{replace(3, "a"), replace(4, "b"), put(5, "b", item("x", "5")), del(6, "b", "k")},
			want:  []string{`item("b" "x" "5" exp - rev 0)`, `record("b" "" "" exp - rev 6)`},
		},
		{
			name:  "empty ids, keys and values",
			setup: []*prismv1.KeyValueChange{put(1, "", item("", ""))},
			batch: []*prismv1.KeyValueChange{put(2, "", item("", "v"), item("k", "")), del(3, "", "k")},
			want:  []string{`item("" "" "v" exp - rev 0)`, `record("" "" "" exp - rev 3)`},
		},
	}
	conn := rawConn(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := openStore(t, newNamespace(t)), openStore(t, newNamespace(t))
			checkCollapse(t, conn, a, b, tt.setup, tt.batch)
			var got []string
			for _, r := range dump(t, conn, a) {
				got = append(got, r.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rows = %q\nwant %q", got, tt.want)
			}
		})
	}
}

// Random batches over a few ids and keys, so every order of put, item delete,
// record delete, replace and empty put meets every other, on top of random
// stored state.
func TestBatchCollapseRandom(t *testing.T) {
	conn := rawConn(t)
	a, b := openStore(t, newNamespace(t)), openStore(t, newNamespace(t))
	rng := rand.New(rand.NewPCG(1, 2))
	ids, keys := []string{"a", "b", "c", ""}, []string{"x", "y", "z", ""}
	var seq uint64
	change := func() *prismv1.KeyValueChange {
		seq++
		id := ids[rng.IntN(len(ids))]
		switch p := rng.IntN(10); {
		case p < 5:
			var items []*prismv1.Item
			for range rng.IntN(3) + 1 {
				items = append(items, item(keys[rng.IntN(len(keys))], fmt.Sprint(seq)))
			}
			return put(seq, id, items...)
		case p < 6:
			return put(seq, id)
		case p < 7:
			var items []*prismv1.Item
			for range rng.IntN(3) {
				items = append(items, item(keys[rng.IntN(len(keys))], fmt.Sprint(seq)))
			}
			return replace(seq, id, items...)
		case p < 8:
			var ks []string
			for range rng.IntN(3) + 1 {
				ks = append(ks, keys[rng.IntN(len(keys))])
			}
			return del(seq, id, ks...)
		default:
			return del(seq, id)
		}
	}
	for round := range 40 {
		var setup, batch []*prismv1.KeyValueChange
		for range rng.IntN(4) {
			setup = append(setup, change())
		}
		for range rng.IntN(12) + 1 {
			batch = append(batch, change())
		}
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { checkCollapse(t, conn, a, b, setup, batch) })
	}
}
