package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// GetItems reads one page of the items of record req.Id in key order: all
// items, only those in req.Keys, or those in req.Range [start, end) (an
// empty end is unbounded). req.PageSize 0 means 100; it is capped at 1000.
// req.PageToken is the NextPageToken of the previous page, "" for the first.
// req.MinSeq is ignored: waiting for the projection is the caller's job.
//
// Expired items (expire_time <= now) are never returned. The page and the
// revision come from one snapshot (one statement).
// Revision is the stream sequence of the record's last applied change; a
// record that does not exist or has no live item gives an empty response
// with Revision 0 (the caller's NOT_FOUND). NextPageToken is empty on the
// last page.
//
// Errors: ErrInvalidPageToken (wrapped) for a token GetItems did not make;
// ErrInvalidRequest for a nil request or one with both keys and range;
// ErrClosed after Close; otherwise the database error.
func (s *Store) GetItems(ctx context.Context, req *prismv1.GetRequest) (*prismv1.GetResponse, error) {
	after, hasAfter, err := kit.CheckGet(req)
	return kit.Do(&s.gate, ErrClosed, "get items", kitErrors.Request(err), func() (*prismv1.GetResponse, error) {
		resp, err := s.getItems(ctx, req, after, hasAfter)
		return resp, err
	})
}

func (s *Store) getItems(ctx context.Context, req *prismv1.GetRequest, after []byte, hasAfter bool) (*prismv1.GetResponse, error) {
	id := kit.NonNil(req.GetId())
	sec, nanos := kit.SplitTime(s.now())
	size := kit.PageSize(req.GetPageSize())

	// Read one more item than the page holds to know whether a next page
	// exists without a second round trip.
	var rows pgx.Rows
	var err error
	if reqKeys := req.GetKeys(); len(reqKeys) > 0 {
		keys := kit.KeysAfter(reqKeys, after, hasAfter)
		rows, err = s.pool.Query(ctx, s.q.itemKeys, id, keys, sec, nanos, size+1)
	} else {
		// Every key is a bytea >= '', so an absent start selects from the
		// first key; a token past the start moves the bound to just after it.
		r := req.GetRange()
		lo, lower := kit.After(r.GetStart(), after, hasAfter)
		if end := r.GetEnd(); len(end) > 0 {
			rows, err = s.pool.Query(ctx, s.q.items[lo][1], id, lower, sec, nanos, size+1, end)
		} else {
			rows, err = s.pool.Query(ctx, s.q.items[lo][0], id, lower, sec, nanos, size+1)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	revision, items, err := scanItems(rows)
	if err != nil {
		return nil, err
	}
	if revision == 0 {
		return &prismv1.GetResponse{}, nil
	}
	resp := &prismv1.GetResponse{Id: id, Revision: uint64(revision), Items: items}
	resp.Items, resp.NextPageToken = kit.KeyPage(items, size, (*prismv1.Item).GetKey)
	return resp, nil
}

// scanItems reads the rows of an itemPage query and closes rows. revision
// is 0 when there is no row: the record has no live item.
func scanItems(rows pgx.Rows) (revision int64, items []*prismv1.Item, err error) {
	defer rows.Close()
	for rows.Next() {
		it := &prismv1.Item{}
		var found bool
		var sec *int64
		var nanos *int32
		if err := rows.Scan(&revision, &found, &it.Key, &it.Value, &sec, &nanos); err != nil {
			return 0, nil, fmt.Errorf("scan item: %w", err)
		}
		if !found {
			continue
		}
		it.Key, it.Value = kit.NonNil(it.Key), kit.NonNil(it.Value)
		if sec != nil {
			it.ExpireTime = &timestamppb.Timestamp{Seconds: *sec, Nanos: *nanos}
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("read items: %w", err)
	}
	return revision, items, nil
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
	sec, nanos := kit.SplitTime(s.now())
	size := kit.PageSize(req.GetPageSize())
	lo, lower := kit.After(nil, after, hasAfter)
	rows, err := s.pool.Query(ctx, s.q.scan[lo], lower, sec, nanos, size+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return kit.ScanIDPage(rows, size)
}
