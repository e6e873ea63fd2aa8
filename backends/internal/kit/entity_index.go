package kit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The states of a secondary index in en_index_state (EntityIndexState).
const (
	IndexReady    = "ready"
	IndexBuilding = "building"
	IndexFailed   = "failed"
)

// DefaultIndexBatch is the number of records one step of an index build
// reads and indexes in one transaction.
const DefaultIndexBatch = 500

// SQLTx is one transaction of a SQL backend as the index build uses it:
// statements are written with ? placeholders and {p} before each table
// name (the backend puts its schema there, or nothing).
type SQLTx interface {
	Exec(ctx context.Context, q string, args ...any) error
	// Query runs q and calls scan for each row; it closes the rows.
	Query(ctx context.Context, q string, scan func(Rows) error, args ...any) error
}

// InTx runs f in one transaction of the backend's writer, serialized with
// its batch applies (PostgreSQL locks the checkpoint row first), and
// commits when f returns nil.
type InTx func(ctx context.Context, f func(tx SQLTx) error) error

// IndexKeyFunc is the key of a stored record in one index: ok is false when
// the record has no entry (a field with presence is unset).
type IndexKeyFunc func(record []byte) (key []byte, ok bool, err error)

// IndexNotReadyError is the error of a scan of an index that is not
// ready: building, or failed.
type IndexNotReadyError struct {
	State *prismv1.EntityIndexState
}

func (e *IndexNotReadyError) Error() string {
	st := e.State
	if st.GetState() == IndexFailed {
		return fmt.Sprintf("index %s failed to build: %s; fix the records and apply the namespace again (or remove the index)", st.GetIndex(), st.GetDetail())
	}
	return fmt.Sprintf("index %s is building: %d of %d stored records read; it answers queries when it is ready", st.GetIndex(), st.GetDone(), st.GetTotal())
}

// IndexNotReady marks the error for callers that declare the interface
// (the gateway answers FAILED_PRECONDITION).
func (e *IndexNotReadyError) IndexNotReady() bool { return true }

// IndexStates caches which indexes are ready, so that a scan asks the
// backend only about indexes it has not seen ready. The zero value is
// ready to use.
type IndexStates struct {
	ready sync.Map // index name → struct{}
}

// Forget drops what c knows (after a sync changed the states).
func (c *IndexStates) Forget() { c.ready.Clear() }

// CheckReady returns an *IndexNotReadyError when index is building or
// failed; an index without a state (never synced) counts as ready.
func (c *IndexStates) CheckReady(ctx context.Context, index string, query func(ctx context.Context, q string, scan func(Rows) error, args ...any) error) error {
	if _, ok := c.ready.Load(index); ok {
		return nil
	}
	st, err := loadIndexState(ctx, query, index)
	if err != nil || st == nil {
		return err
	}
	if st.GetState() == IndexReady {
		c.ready.Store(index, struct{}{})
		return nil
	}
	return &IndexNotReadyError{State: st.EntityIndexState}
}

// indexState is a row of en_index_state.
type indexState struct {
	*prismv1.EntityIndexState
	since  int64  // the checkpoint when the build started
	cursor []byte // the last record id of the current pass
	pass   int    // 0: every record; 1: the records changed since since
}

const indexStateCols = `idx, state, done, total, detail, since, after_id, phase`

func scanIndexState(r Rows) (*indexState, error) {
	st := &indexState{EntityIndexState: &prismv1.EntityIndexState{}}
	var done, total int64
	if err := r.Scan(&st.Index, &st.State, &done, &total, &st.Detail, &st.since, &st.cursor, &st.pass); err != nil {
		return nil, err
	}
	st.Done, st.Total = uint64(done), uint64(total)
	return st, nil
}

func loadIndexState(ctx context.Context, query func(ctx context.Context, q string, scan func(Rows) error, args ...any) error, index string) (*indexState, error) {
	var st *indexState
	err := query(ctx, `SELECT `+indexStateCols+` FROM {p}en_index_state WHERE idx = ?`, func(r Rows) (err error) {
		st, err = scanIndexState(r)
		return err
	}, index)
	return st, err
}

// EntityIndexStates lists the states of the indexes the store was synced
// with, by name.
func EntityIndexStates(ctx context.Context, query func(ctx context.Context, q string, scan func(Rows) error, args ...any) error) ([]*prismv1.EntityIndexState, error) {
	var out []*prismv1.EntityIndexState
	err := query(ctx, `SELECT `+indexStateCols+` FROM {p}en_index_state ORDER BY idx`, func(r Rows) error {
		st, err := scanIndexState(r)
		if err == nil {
			out = append(out, st.EntityIndexState)
		}
		return err
	})
	return out, err
}

// SyncEntityIndexes makes names the secondary indexes of the store, in
// tx: the rows and state of every other index are dropped; an index new
// to the store (or one that failed, to try again) starts building from
// the stored records, or is ready at once when there are none. It
// returns the states of names, in their order.
func SyncEntityIndexes(ctx context.Context, tx SQLTx, names []string) ([]*prismv1.EntityIndexState, error) {
	have := map[string]*indexState{}
	if err := tx.Query(ctx, `SELECT `+indexStateCols+` FROM {p}en_index_state`, func(r Rows) error {
		st, err := scanIndexState(r)
		if err == nil {
			have[st.GetIndex()] = st
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("read index states: %w", err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for idx := range have {
		if want[idx] {
			continue
		}
		if err := tx.Exec(ctx, `DELETE FROM {p}en_index WHERE idx = ?`, idx); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", idx, err)
		}
		if err := tx.Exec(ctx, `DELETE FROM {p}en_index_state WHERE idx = ?`, idx); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", idx, err)
		}
	}
	var since, total int64
	counted := false
	out := make([]*prismv1.EntityIndexState, 0, len(names))
	for _, idx := range names {
		if st := have[idx]; st != nil && st.GetState() != IndexFailed {
			out = append(out, st.EntityIndexState)
			continue
		}
		if !counted {
			if err := tx.Query(ctx, `SELECT (SELECT seq FROM {p}checkpoint), (SELECT COUNT(*) FROM {p}en_records)`, func(r Rows) error { return r.Scan(&since, &total) }); err != nil {
				return nil, fmt.Errorf("count records: %w", err)
			}
			counted = true
		}
		st := &prismv1.EntityIndexState{Index: idx, State: IndexBuilding, Total: uint64(total)}
		if total == 0 {
			st.State = IndexReady
		}
		// Rows it holds already (written by puts since a failed build, or
		// replayed into a migration's target) are replaced record by
		// record as the build passes.
		if err := tx.Exec(ctx, `DELETE FROM {p}en_index_state WHERE idx = ?`, idx); err != nil {
			return nil, fmt.Errorf("clear index %s: %w", idx, err)
		}
		if err := tx.Exec(ctx, `INSERT INTO {p}en_index_state (`+indexStateCols+`) VALUES (?, ?, 0, ?, '', ?, NULL, 0)`, idx, st.State, total, since); err != nil {
			return nil, fmt.Errorf("start index %s: %w", idx, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// IndexBuild says how to build one index.
type IndexBuild struct {
	// Index is the index name.
	Index string
	// Unique is set for a unique index: two records with one key fail
	// the build.
	Unique bool
	// Key is the record's key in the index; nil when the keys cannot be
	// computed from the stored records (a blind index): the entries the
	// events wrote stand, and the index is marked ready.
	Key IndexKeyFunc
	// Batch is the number of records a step reads (0: DefaultIndexBatch).
	Batch int
	// Progress, when set, is called after each step with the state.
	Progress func(*prismv1.EntityIndexState)
}

// duplicateError is a unique index build finding two records of one key.
type duplicateError struct{ detail string }

func (e *duplicateError) Error() string { return e.detail }

// BuildEntityIndex fills index b.Index from the stored records while its
// state is building, a step of b.Batch records per transaction of inTx, in
// two passes by record id: every record, then the records changed since
// the build started (a put a gateway made before it knew the index
// carries no entry of it). The state records the progress, so a build
// that stops (ctx, a crash) resumes where it was. A unique index whose
// records hold one key twice fails: its rows are deleted and its state
// is failed with the two records named. It returns the state the build
// ends in (nil for an index without a state).
func BuildEntityIndex(ctx context.Context, inTx InTx, b IndexBuild) (*prismv1.EntityIndexState, error) {
	if b.Batch <= 0 {
		b.Batch = DefaultIndexBatch
	}
	if b.Key == nil {
		var st *indexState
		err := inTx(ctx, func(tx SQLTx) (err error) {
			if st, err = loadIndexState(ctx, tx.Query, b.Index); err != nil || st == nil || st.GetState() != IndexBuilding {
				return err
			}
			st.State = IndexReady
			return tx.Exec(ctx, `UPDATE {p}en_index_state SET state = ? WHERE idx = ?`, IndexReady, b.Index)
		})
		if err != nil || st == nil {
			return nil, err
		}
		return st.EntityIndexState, nil
	}
	for {
		var st *indexState
		err := inTx(ctx, func(tx SQLTx) (err error) {
			st, err = buildStep(ctx, tx, b)
			return err
		})
		var dup *duplicateError
		if errors.As(err, &dup) {
			err = inTx(ctx, func(tx SQLTx) error {
				if err := tx.Exec(ctx, `DELETE FROM {p}en_index WHERE idx = ?`, b.Index); err != nil {
					return err
				}
				return tx.Exec(ctx, `UPDATE {p}en_index_state SET state = ?, detail = ? WHERE idx = ?`, IndexFailed, dup.detail, b.Index)
			})
			if err != nil {
				return nil, fmt.Errorf("fail index %s: %w", b.Index, err)
			}
			return &prismv1.EntityIndexState{Index: b.Index, State: IndexFailed, Detail: dup.detail}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("build index %s: %w", b.Index, err)
		}
		if st == nil {
			return nil, nil
		}
		if b.Progress != nil {
			b.Progress(st.EntityIndexState)
		}
		if st.GetState() != IndexBuilding {
			return st.EntityIndexState, nil
		}
		if err := ctx.Err(); err != nil {
			return st.EntityIndexState, err
		}
	}
}

// buildStep indexes the next batch of records of b's build in tx and
// moves its state on.
func buildStep(ctx context.Context, tx SQLTx, b IndexBuild) (*indexState, error) {
	st, err := loadIndexState(ctx, tx.Query, b.Index)
	if err != nil || st == nil || st.GetState() != IndexBuilding {
		return st, err
	}
	q, args := `SELECT id, record FROM {p}en_records WHERE rev > ?`, []any{int64(-1)}
	if st.pass == 1 {
		args[0] = st.since
	}
	if len(st.cursor) > 0 {
		q, args = q+` AND id > ?`, append(args, st.cursor)
	}
	var ids, recs [][]byte
	if err := tx.Query(ctx, q+` ORDER BY id LIMIT ?`, func(r Rows) error {
		var id, rec []byte
		if err := r.Scan(&id, &rec); err != nil {
			return err
		}
		ids, recs = append(ids, id), append(recs, rec)
		return nil
	}, append(args, b.Batch)...); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	if len(ids) > 0 {
		if err := indexRecords(ctx, tx, b, ids, recs); err != nil {
			return nil, err
		}
		st.cursor = ids[len(ids)-1]
		if st.pass == 0 {
			st.Done += uint64(len(ids))
		}
	}
	if len(ids) < b.Batch {
		if st.pass == 0 {
			st.pass, st.cursor = 1, nil
		} else {
			st.State = IndexReady
		}
	}
	if err := tx.Exec(ctx, `UPDATE {p}en_index_state SET state = ?, done = ?, after_id = ?, phase = ? WHERE idx = ?`, st.State, int64(st.Done), st.cursor, st.pass, b.Index); err != nil {
		return nil, fmt.Errorf("record progress: %w", err)
	}
	return st, nil
}

// indexRecords replaces the entries of records ids (of bytes recs) in
// b's index by the keys b.Key gives, and for a unique index checks that
// no key is held twice.
func indexRecords(ctx context.Context, tx SQLTx, b IndexBuild, ids, recs [][]byte) error {
	idArgs := append(make([]any, 0, len(ids)+1), b.Index)
	var entries, keys []any
	for i, id := range ids {
		idArgs = append(idArgs, id)
		key, ok, err := b.Key(recs[i])
		if err != nil {
			return fmt.Errorf("the record %q: %w", id, err)
		}
		if ok {
			entries = append(entries, b.Index, NonNil(key), id)
			keys = append(keys, NonNil(key))
		}
	}
	if err := tx.Exec(ctx, `DELETE FROM {p}en_index WHERE idx = ? AND id IN (`+marks(len(ids), 1)+`)`, idArgs...); err != nil {
		return fmt.Errorf("delete entries: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if err := tx.Exec(ctx, `INSERT INTO {p}en_index (idx, key, id) VALUES `+marks(len(keys), 3)+` ON CONFLICT DO NOTHING`, entries...); err != nil {
		return fmt.Errorf("insert entries: %w", err)
	}
	if !b.Unique {
		return nil
	}
	var detail string
	err := tx.Query(ctx, `SELECT a.key, a.id, b.id FROM {p}en_index a JOIN {p}en_index b ON b.idx = a.idx AND b.key = a.key AND b.id > a.id WHERE a.idx = ? AND a.key IN (`+marks(len(keys), 1)+`) LIMIT 1`, func(r Rows) error {
		var key, a, z []byte
		if err := r.Scan(&key, &a, &z); err != nil {
			return err
		}
		detail = fmt.Sprintf("records %q and %q hold one value (key %s) of unique index %s", a, z, strconv.Quote(string(key)), b.Index)
		return nil
	}, append([]any{b.Index}, keys...)...)
	if err != nil {
		return fmt.Errorf("check uniqueness: %w", err)
	}
	if detail != "" {
		return &duplicateError{detail: detail}
	}
	return nil
}

// marks is n rows of cols ? placeholders: "(?, ?), (?, ?)"; for one
// column "?, ?".
func marks(n, cols int) string {
	one := strings.TrimSuffix(strings.Repeat("?, ", cols), ", ")
	if cols > 1 {
		one = "(" + one + ")"
	}
	return strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
}

// Dollars rewrites the ? placeholders of q as $1, $2, … (q holds no ? in
// literals).
func Dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// SyncEntityIndexesOp is a store's SyncEntityIndexes: SyncEntityIndexes in
// one transaction of inTx, inside the store's gate g, forgetting what c
// knows.
func SyncEntityIndexesOp(ctx context.Context, g *Gate, closed error, c *IndexStates, inTx InTx, names []string) ([]*prismv1.EntityIndexState, error) {
	return Do(g, closed, "sync entity indexes", nil, func() (out []*prismv1.EntityIndexState, err error) {
		defer c.Forget()
		err = inTx(ctx, func(tx SQLTx) error {
			out, err = SyncEntityIndexes(ctx, tx, names)
			return err
		})
		return out, err
	})
}

// BuildEntityIndexOp is a store's BuildEntityIndex: BuildEntityIndex
// inside the store's gate g, forgetting what c knows.
func BuildEntityIndexOp(ctx context.Context, g *Gate, closed error, c *IndexStates, inTx InTx, b IndexBuild) (*prismv1.EntityIndexState, error) {
	return Do(g, closed, "build entity index", nil, func() (*prismv1.EntityIndexState, error) {
		defer c.Forget()
		return BuildEntityIndex(ctx, inTx, b)
	})
}
