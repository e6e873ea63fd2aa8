package postgres

import (
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Collapsing a batch rests on what every change keeps true of a record:
// it exists while it has at least one item row, expired or not, and its
// revision is the largest rev of its rows. A put writes its item rows with
// its sequence; a whole-record delete removes the rows; a change that writes
// no row (a delete of some keys, an empty put) raises the rev of the
// record's first row left, if any. A replace is a whole-record delete
// followed by a put of its items.
//
// So after any sequence of changes to one record, applied one by one:
//   - its items are what the last whole-record delete (if any) left, that
//     is nothing, or else the stored items, with the last put or delete of
//     each key since then applied;
//   - it exists if and only if it has items, and then its revision is the
//     sequence of its last change, whatever that change was.
//
// collapsed computes exactly that per record, in Go, and writes() turns it
// into the arrays of a few set-based statements: the item rows a batch
// writes all get the record's last sequence, which leaves the largest rev,
// the revision, where one-by-one applies would.
type collapsed struct {
	recs  []record
	index map[string]int // record id -> position in recs
}

type record struct {
	id    []byte
	last  int64 // sequence of the record's last change
	wiped bool  // a whole-record delete happened
	// ops holds the last operation on each key since the last wipe, in
	// first-seen order; keys indexes it once it is long enough to need one.
	ops  []itemOp
	keys map[string]int
}

type itemOp struct {
	key   []byte
	value []byte
	put   bool // false: delete
	sec   pgtype.Int8
	nanos int32
}

// linearOps is how many item ops of a record are searched linearly before
// the record gets a map: most records of a batch have one or two items.
const linearOps = 16

func (c *collapsed) record(id []byte) *record {
	if c.index == nil {
		c.index = make(map[string]int)
	}
	if i, ok := c.index[string(id)]; ok {
		return &c.recs[i]
	}
	c.index[string(id)] = len(c.recs)
	c.recs = append(c.recs, record{id: kit.NonNil(id)})
	return &c.recs[len(c.recs)-1]
}

// add applies one validated change to the collapsed state.
func (c *collapsed) add(ch *prismv1.KeyValueChange) {
	ev := ch.GetEvent()
	r := c.record(ev.GetId())
	r.last = int64(ch.GetSeq())
	switch x := ev.GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		r.put(x.Put.GetItems())
	case *prismv1.KeyValueEvent_Delete:
		keys := x.Delete.GetKeys()
		if len(keys) == 0 {
			r.wipe()
			return
		}
		for _, k := range keys {
			r.set(itemOp{key: kit.NonNil(k)})
		}
	case *prismv1.KeyValueEvent_Replace:
		// A wipe and a put of the new items: the rows written carry the
		// record's last sequence, the revision; no items leave no record.
		r.wipe()
		r.put(x.Replace.GetItems())
	}
}

// put records a put of items.
func (r *record) put(items []*prismv1.Item) {
	for _, it := range items {
		op := itemOp{key: kit.NonNil(it.GetKey()), value: kit.NonNil(it.GetValue()), put: true}
		if et := it.GetExpireTime(); et != nil {
			op.sec = pgtype.Int8{Int64: et.GetSeconds(), Valid: true}
			op.nanos = et.GetNanos()
		}
		r.set(op)
	}
}

// wipe records a whole-record delete: what came before it is gone.
func (r *record) wipe() {
	r.wiped = true
	clear(r.ops)
	r.ops = r.ops[:0]
	r.keys = nil
}

// set records op as the last operation on its key.
func (r *record) set(op itemOp) {
	if r.keys != nil {
		if i, ok := r.keys[string(op.key)]; ok {
			r.ops[i] = op
			return
		}
		r.keys[string(op.key)] = len(r.ops)
		r.ops = append(r.ops, op)
		return
	}
	for i := range r.ops {
		if string(r.ops[i].key) == string(op.key) {
			r.ops[i] = op
			return
		}
	}
	r.ops = append(r.ops, op)
	if len(r.ops) > linearOps {
		r.keys = make(map[string]int, len(r.ops))
		for i, o := range r.ops {
			r.keys[string(o.key)] = i
		}
	}
}

// writes are the arguments of the statements that apply a collapsed batch,
// in the order they run: wipe, delete items, upsert items, then raise the
// revision of the records whose change wrote no row.
type writes struct {
	wipeIDs [][]byte

	delIDs, delKeys [][]byte

	itemIDs, itemKeys, itemValues [][]byte
	itemSecs                      []pgtype.Int8
	itemNanos                     []int32
	itemRevs                      []int64

	// Records not wiped and with no key put: their first row left, if any,
	// carries the new revision.
	maybeIDs  [][]byte
	maybeRevs []int64
}

// deletes reports whether w needs more than upserts.
func (w *writes) deletes() bool {
	return len(w.wipeIDs) > 0 || len(w.delIDs) > 0 || len(w.maybeIDs) > 0
}

func (c *collapsed) writes() *writes {
	w := &writes{}
	n := 0
	for i := range c.recs {
		n += len(c.recs[i].ops)
	}
	w.itemIDs = make([][]byte, 0, n)
	w.itemKeys = make([][]byte, 0, n)
	w.itemValues = make([][]byte, 0, n)
	w.itemSecs = make([]pgtype.Int8, 0, n)
	w.itemNanos = make([]int32, 0, n)
	w.itemRevs = make([]int64, 0, n)
	for i := range c.recs {
		r := &c.recs[i]
		if r.wiped {
			w.wipeIDs = append(w.wipeIDs, r.id)
		}
		hasPut := false
		for _, op := range r.ops {
			if op.put {
				hasPut = true
				w.itemIDs = append(w.itemIDs, r.id)
				w.itemKeys = append(w.itemKeys, op.key)
				w.itemValues = append(w.itemValues, op.value)
				w.itemSecs = append(w.itemSecs, op.sec)
				w.itemNanos = append(w.itemNanos, op.nanos)
				w.itemRevs = append(w.itemRevs, r.last)
			} else if !r.wiped {
				// After a wipe the key is gone already.
				w.delIDs = append(w.delIDs, r.id)
				w.delKeys = append(w.delKeys, op.key)
			}
		}
		switch {
		case hasPut:
			// Its rows written carry the revision.
		case r.wiped:
			// No items left: the wipe removed the record.
		default:
			w.maybeIDs = append(w.maybeIDs, r.id)
			w.maybeRevs = append(w.maybeRevs, r.last)
		}
	}
	return w
}
