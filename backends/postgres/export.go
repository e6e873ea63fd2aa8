package postgres

import (
	"context"
	"time"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// exportSQL reads the rows, expired ones too, of the first $4 records with
// a live item at ($1, $2) and id >= $3, in (id, key) order: the ids come
// from a scan of the primary key that stops at the $4-th live id (bytea has
// no max(), hence ORDER BY DESC LIMIT 1), the rows from a range scan up to
// it. Expired rows carry the revision (expiry is not a write); live says
// which to return.
const exportSQL = `SELECT i.id, i.key, i.value, i.expire_sec, i.expire_nanos, i.rev,
		i.expire_sec IS NULL OR (i.expire_sec, i.expire_nanos) > ($1, $2) AS live
	FROM {s}.items i
	WHERE i.id >= $3 AND i.id <= (SELECT p.id FROM (
		SELECT DISTINCT j.id FROM {s}.items j
		WHERE j.id >= $3 AND (j.expire_sec IS NULL OR (j.expire_sec, j.expire_nanos) > ($1, $2))
		ORDER BY j.id LIMIT $4) p ORDER BY p.id DESC LIMIT 1)
	ORDER BY i.id, i.key`

// ExportRecords reads records in bulk, in byte order of id: up to limit
// records with id >= from (nil or empty from is the start: the empty id is
// the smallest), each with all its items that are live at now (expire_time
// after now), in key order, and its revision (the stream sequence of its
// last applied change, as GetItems returns it). Records without a live item
// at now are left out. It returns fewer than limit records only when no more
// exist. To read the next page, pass the last record's id followed by a
// zero byte, the smallest id after it.
//
// now, not the store's clock, decides expiry, so two stores read with the
// same now agree on which items are live. A page is read with one
// statement, from one snapshot; pages are not from one snapshot. A page
// holds every item of its records, so its size is limit times the size of
// a record.
//
// Errors: ErrInvalidRequest for limit < 1; ErrClosed after Close; ctx's
// error; otherwise the database error.
func (s *Store) ExportRecords(ctx context.Context, from []byte, limit int, now time.Time) ([]*prismv1.GetResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "export records", kitErrors.Request(kit.CheckExport(limit)), func() ([]*prismv1.GetResponse, error) {
		recs, err := s.exportRecords(ctx, from, limit, now)
		return recs, err
	})
}

func (s *Store) exportRecords(ctx context.Context, from []byte, limit int, now time.Time) ([]*prismv1.GetResponse, error) {
	sec, nanos := kit.SplitTime(now)
	rows, err := s.pool.Query(ctx, s.q.export, sec, nanos, kit.NonNil(from), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return kit.ScanExport(rows)
}
