package kit

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// CheckExport checks the arguments of an ExportRecords call: limit must be
// at least 1. It returns a *RequestError otherwise.
func CheckExport(limit int) error {
	if limit < 1 {
		return &RequestError{Detail: fmt.Sprintf("export limit %d, need at least 1", limit)}
	}
	return nil
}

// Rows is what ScanExport and ScanIDPage read of a query's rows:
// database/sql's *sql.Rows and pgx's Rows both have it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanExport reads the rows of a SQL export query, in (id, key) order and
// expired rows included, with the columns id, key, value, expire_sec (NULL:
// never), expire_nanos, rev and live (whether the row is live at the
// export's now), and groups them into records: a record's revision is the
// largest rev of its rows (expiry is not a write, as in GetItems), its
// items are its live rows, and a record without a live row is left out.
// The caller closes rows.
func ScanExport(rows Rows) ([]*prismv1.GetResponse, error) {
	var (
		recs []*prismv1.GetResponse
		cur  *prismv1.GetResponse
	)
	flush := func() {
		if cur != nil && len(cur.Items) > 0 {
			recs = append(recs, cur)
		}
	}
	for rows.Next() {
		var (
			id, key, value []byte
			expSec         *int64
			expNanos       int32
			rev            int64
			live           bool
		)
		if err := rows.Scan(&id, &key, &value, &expSec, &expNanos, &rev, &live); err != nil {
			return nil, fmt.Errorf("scan item: %w", err)
		}
		if cur == nil || !bytes.Equal(cur.Id, id) {
			flush()
			cur = &prismv1.GetResponse{Id: NonNil(id)}
		}
		cur.Revision = max(cur.Revision, uint64(rev))
		if !live {
			continue
		}
		it := &prismv1.Item{Key: NonNil(key), Value: NonNil(value)}
		if expSec != nil {
			it.ExpireTime = &timestamppb.Timestamp{Seconds: *expSec, Nanos: expNanos}
		}
		cur.Items = append(cur.Items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	flush()
	return recs, nil
}
