package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

const (
	// keysPerQuery bounds the IN list of a GetItems by keys.
	keysPerQuery = 256
)

// live is the condition on items i that have not expired at (?, ?) =
// (seconds, nanoseconds) of now.
const live = `(i.expire_sec IS NULL OR (i.expire_sec, i.expire_nanos) > (?, ?))`

// readStmts are the statements of the read pool.
type readStmts struct {
	stmtSet
	checkpoint *sql.Stmt
	revision   *sql.Stmt
	// items[lower][upper]: a page of a record's items, lower 0 is key >= ?,
	// 1 is key > ?; upper 0 is unbounded, 1 is key < ?. page is the same
	// with the record's revision in each row: one statement, so one read
	// transaction of SQLite's own and none of database/sql's.
	items, page [2][2]*sql.Stmt
	// scan[lower]: 0 is id >= ?, 1 is id > ?.
	scan   [2]*sql.Stmt
	export *sql.Stmt
}

var lowerOps = [2]string{">=", ">"}

func prepareReadStmts(ctx context.Context, db *sql.DB) (*readStmts, error) {
	s := &readStmts{}
	s.checkpoint = s.prepare(ctx, db, `SELECT seq FROM checkpoint WHERE one = 1`)
	s.export = s.prepare(ctx, db, exportSQL)
	// A record's revision is the largest rev of its rows (expired ones
	// too: expiry is not a write); it counts only while it has a live
	// item. One pass over the record's rows gives both. Parameters: sec,
	// nanos, id.
	revision := `SELECT max(i.rev) AS rev, count(*) FILTER (WHERE ` + live + `) AS live
		FROM items i WHERE i.id = ?`
	s.revision = s.prepare(ctx, db, revision)
	for lo, op := range lowerOps {
		for hi, upper := range [2]string{"", " AND i.key < ?"} {
			items := `SELECT i.key, i.value, i.expire_sec, i.expire_nanos
				FROM items i WHERE i.id = ? AND i.key ` + op + ` ?` + upper + ` AND ` + live + `
				ORDER BY i.key LIMIT ?`
			s.items[lo][hi] = s.prepare(ctx, db, items)
			// Parameters: id, then those of items.
			s.page[lo][hi] = s.prepare(ctx, db, strings.Replace(items, "SELECT i.key,",
				"SELECT (SELECT max(r.rev) FROM items r WHERE r.id = ?), i.key,", 1))
		}
		s.scan[lo] = s.prepare(ctx, db, `SELECT DISTINCT i.id FROM items i WHERE i.id `+op+` ? AND `+live+`
			ORDER BY i.id LIMIT ?`)
	}
	if s.err != nil {
		_ = s.close()
		return nil, s.err
	}
	return s, nil
}

// GetItems reads one page of the items of record req.Id in key order: all
// items, only those in req.Keys, or those in req.Range [start, end) (an
// empty end is unbounded). req.PageSize 0 means 100; it is capped at 1000.
// req.PageToken is the NextPageToken of the previous page, "" for the first.
// req.MinSeq is ignored: waiting for the projection is the caller's job.
//
// Expired items (expire_time <= now) are never returned. The page and the
// revision come from one snapshot. Revision is the stream sequence of the
// record's last applied change; a record that does not exist or has no live
// item gives an empty response with Revision 0 (the caller's NOT_FOUND).
// NextPageToken is empty on the last page.
//
// Errors: ErrInvalidPageToken (wrapped) for a token GetItems did not make;
// ErrInvalidRequest for a nil request or one with both keys and range;
// ErrClosed after Close; otherwise the database error.
func (s *Store) GetItems(ctx context.Context, req *prismv1.GetRequest) (*prismv1.GetResponse, error) {
	after, hasAfter, err := kit.CheckGet(req)
	return kit.Do(&s.gate, ErrClosed, "get items", kitErrors.Request(err), func() (*prismv1.GetResponse, error) {
		resp, err := s.getItems(ctx, req, after, hasAfter)
		return resp, ctxErr(ctx, err)
	})
}

func (s *Store) getItems(ctx context.Context, req *prismv1.GetRequest, after []byte, hasAfter bool) (*prismv1.GetResponse, error) {
	id := kit.NonNil(req.GetId())
	sec, nanos := splitTime(s.now())
	size := kit.PageSize(req.GetPageSize())

	if len(req.GetKeys()) == 0 {
		if resp, err := s.rangePage(ctx, id, req.GetRange(), after, hasAfter, sec, nanos, size); resp != nil || err != nil {
			return resp, err
		}
		// An empty page: whether the record exists, and its revision,
		// come from the same snapshot as the empty page.
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var (
		revision sql.NullInt64
		liveRows int64
	)
	err = tx.StmtContext(ctx, s.rs.revision).QueryRowContext(ctx, sec, nanos, id).Scan(&revision, &liveRows)
	if err != nil {
		return nil, fmt.Errorf("read revision: %w", err)
	}
	if liveRows == 0 {
		return &prismv1.GetResponse{}, nil
	}

	// Read one more item than the page holds to know whether a next page
	// exists without a second round trip.
	var items []*prismv1.Item
	if len(req.GetKeys()) > 0 {
		items, err = s.itemsByKeys(ctx, tx, id, req.GetKeys(), after, hasAfter, sec, nanos, size+1)
	} else {
		items, err = s.itemsInRange(ctx, tx, id, req.GetRange(), after, hasAfter, sec, nanos, size+1)
	}
	if err != nil {
		return nil, err
	}
	return page(id, revision.Int64, items, size), nil
}

// page is the response of items read one beyond a page of size.
func page(id []byte, revision int64, items []*prismv1.Item, size int) *prismv1.GetResponse {
	resp := &prismv1.GetResponse{Id: id, Revision: uint64(revision)}
	resp.Items, resp.NextPageToken = kit.KeyPage(items, size, (*prismv1.Item).GetKey)
	return resp
}

// rangeArgs are the parameters of items[lo][hi] after the id, and lo and
// hi, for the items of range r from after, at most limit.
func rangeArgs(args []any, r *prismv1.KeyRange, after []byte, hasAfter bool, sec, nanos int64, limit int) (_ []any, lo, hi int) {
	// Every key is a BLOB >= x'', so an absent start selects from the first
	// key; a token past the start moves the bound to just after it.
	lo, lower := kit.After(r.GetStart(), after, hasAfter)
	args = append(args, lower)
	if end := r.GetEnd(); len(end) > 0 {
		hi = 1
		args = append(args, end)
	}
	return append(args, sec, nanos, limit), lo, hi
}

// rangePage reads a page of record id's items in r [start, end) with the
// record's revision in one statement, so from one snapshot without a
// transaction of database/sql's (BenchmarkGetItems: 39 against 16 µs CPU
// per get). It returns nil, nil for an empty page, which needs the record's
// live count to tell an absent record from a page past its end.
func (s *Store) rangePage(ctx context.Context, id []byte, r *prismv1.KeyRange,
	after []byte, hasAfter bool, sec, nanos int64, size int) (*prismv1.GetResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// One more item than the page holds tells whether a next page exists.
	args, lo, hi := rangeArgs(append(make([]any, 0, 8), id, id), r, after, hasAfter, sec, nanos, size+1)
	// The statement runs without ctx's cancellation: a page is bounded
	// (1001 rows at most) and a WAL reader never waits for a lock, while
	// the driver pays a goroutine and a progress handler per statement for
	// a cancellable context (BenchmarkGetItems: 16 against 19-24 µs CPU).
	rows, err := s.rs.page[lo][hi].QueryContext(context.WithoutCancel(ctx), args...)
	if err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	defer rows.Close()
	var (
		revision int64
		items    []*prismv1.Item
	)
	for rows.Next() {
		it, err := scanItem(rows, &revision)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	if len(items) == 0 {
		return nil, nil
	}
	return page(id, revision, items, size), nil
}

func (s *Store) itemsInRange(ctx context.Context, tx *sql.Tx, id []byte, r *prismv1.KeyRange,
	after []byte, hasAfter bool, sec, nanos int64, limit int) ([]*prismv1.Item, error) {
	args, lo, hi := rangeArgs([]any{id}, r, after, hasAfter, sec, nanos, limit)
	rows, err := tx.StmtContext(ctx, s.rs.items[lo][hi]).QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	return scanItems(rows, nil)
}

func (s *Store) itemsByKeys(ctx context.Context, tx *sql.Tx, id []byte, reqKeys [][]byte,
	after []byte, hasAfter bool, sec, nanos int64, limit int) ([]*prismv1.Item, error) {
	keys := kit.KeysAfter(reqKeys, after, hasAfter)

	var items []*prismv1.Item
	for len(keys) > 0 && len(items) < limit {
		chunk := keys[:min(len(keys), keysPerQuery)]
		keys = keys[len(chunk):]
		args := make([]any, 0, len(chunk)+4)
		args = append(args, id)
		for _, k := range chunk {
			args = append(args, k)
		}
		args = append(args, sec, nanos, limit-len(items))
		// The chunks are in key order, so their results are too.
		rows, err := tx.QueryContext(ctx, `SELECT i.key, i.value, i.expire_sec, i.expire_nanos
			FROM items i WHERE i.id = ? AND i.key IN (`+strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)
			AND `+live+` ORDER BY i.key LIMIT ?`, args...)
		if err != nil {
			return nil, fmt.Errorf("read items by key: %w", err)
		}
		if items, err = scanItems(rows, items); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// scanItems appends the items of rows to items and closes rows.
func scanItems(rows *sql.Rows, items []*prismv1.Item) ([]*prismv1.Item, error) {
	defer rows.Close()
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	return items, nil
}

// scanItem scans the row of rows into the columns lead, then an item's
// key, value, expire_sec and expire_nanos.
func scanItem(rows *sql.Rows, lead ...any) (*prismv1.Item, error) {
	it := &prismv1.Item{}
	var sec sql.NullInt64
	var nanos int64
	if err := rows.Scan(append(lead, &it.Key, &it.Value, &sec, &nanos)...); err != nil {
		return nil, fmt.Errorf("scan item: %w", err)
	}
	if sec.Valid {
		it.ExpireTime = &timestamppb.Timestamp{Seconds: sec.Int64, Nanos: int32(nanos)}
	}
	return it, nil
}

// ScanIDs lists one page of the ids of records that have at least one live
// item, in byte order. req.PageSize 0 means 100; it is capped at 1000.
// req.PageToken is the NextPageToken of the previous page, "" for the first;
// NextPageToken is empty on the last page. req.MinSeq is ignored.
//
// Errors: ErrInvalidPageToken (wrapped) for a token ScanIDs did not make;
// ErrInvalidRequest for a nil request; ErrClosed after Close; otherwise the
// database error.
func (s *Store) ScanIDs(ctx context.Context, req *prismv1.ScanRequest) (*prismv1.ScanResponse, error) {
	after, hasAfter, err := kit.CheckScan(req)
	return kit.Do(&s.gate, ErrClosed, "scan ids", kitErrors.Request(err), func() (*prismv1.ScanResponse, error) {
		return s.scanIDs(ctx, req, after, hasAfter)
	})
}

func (s *Store) scanIDs(ctx context.Context, req *prismv1.ScanRequest, after []byte, hasAfter bool) (*prismv1.ScanResponse, error) {
	sec, nanos := splitTime(s.now())
	size := kit.PageSize(req.GetPageSize())
	lo, lower := kit.After(nil, after, hasAfter)
	rows, err := s.rs.scan[lo].QueryContext(ctx, lower, sec, nanos, size+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return kit.ScanIDPage(rows, size)
}

// splitTime returns t as the (seconds, nanoseconds) pair items store.
func splitTime(t time.Time) (sec, nanos int64) {
	return t.Unix(), int64(t.Nanosecond())
}

// ctxErr returns ctx's error if err is not nil and ctx ended, else err. When a context is
// cancelled mid-query, database/sql rolls the read transaction back from
// another goroutine, and the query then fails with "statement is closed"
// or "transaction has already been committed or rolled back" instead of
// the cancellation that caused it.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); err != nil && cerr != nil {
		return cerr
	}
	return err
}
