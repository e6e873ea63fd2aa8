package kit

import (
	"encoding/binary"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// CheckEntityBatch is CheckKeyValueBatch for Entity: every change must be
// non-nil with an event of a non-empty id, a put with a record and index
// entries of a non-empty index name, or a delete with neither.
func CheckEntityBatch(changes []*prismv1.EntityChange, through uint64) *Fault {
	return checkBatch(changes, through, func(c *prismv1.EntityChange) string { return checkEntityEvent(c.GetEvent()) })
}

func checkEntityEvent(ev *prismv1.EntityEvent) string {
	switch {
	case ev == nil:
		return "nil event"
	case len(ev.GetId()) == 0:
		return "empty id"
	case ev.GetDelete() && (len(ev.GetRecord()) > 0 || len(ev.GetIndexes()) > 0):
		return "a delete with a record"
	case !ev.GetDelete() && len(ev.GetRecord()) == 0:
		return "a put without a record"
	}
	for _, ix := range ev.GetIndexes() {
		if ix.GetIndex() == "" {
			return "an index entry without an index name"
		}
	}
	return ""
}

// IndexPos is a position in one secondary index: the index key, then the
// record id (the primary key breaks ties).
type IndexPos struct {
	Key, ID []byte
}

// EncodeIndexToken returns the page token of an index scan whose page
// ended at p.
func EncodeIndexToken(p IndexPos) string {
	b := binary.AppendUvarint(nil, uint64(len(p.Key)))
	b = append(append(b, p.Key...), p.ID...)
	return tokenEncoding.EncodeToString(b)
}

// CheckEntityScan checks a ScanEntities request and decodes its page
// token: after is the last position of the previous page, nil on the
// first.
//
// Errors: a *RequestError for a nil request, an empty index name, or a
// token EncodeIndexToken did not make.
func CheckEntityScan(req *prismv1.EntityScanRequest) (after *IndexPos, err error) {
	if req == nil {
		return nil, &RequestError{Detail: "nil request"}
	}
	if req.GetIndex() == "" {
		return nil, &RequestError{Detail: "empty index name"}
	}
	if req.GetPageToken() == "" {
		return nil, nil
	}
	b, err := tokenEncoding.DecodeString(req.GetPageToken())
	if err != nil {
		return nil, badToken(req.GetPageToken())
	}
	n, used := binary.Uvarint(b)
	if used <= 0 || n > uint64(len(b)-used) || len(b)-used-int(n) == 0 {
		return nil, badToken(req.GetPageToken())
	}
	b = b[used:]
	return &IndexPos{Key: b[:n:n], ID: b[n:]}, nil
}

// MarshalLineage is the stored form of l: nil for none.
func MarshalLineage(l *prismv1.EntityLineage) ([]byte, error) {
	if l == nil {
		return nil, nil
	}
	return proto.Marshal(l)
}

// UnmarshalLineage reverses MarshalLineage: nil for none.
func UnmarshalLineage(b []byte) (*prismv1.EntityLineage, error) {
	if b == nil {
		return nil, nil
	}
	var l prismv1.EntityLineage
	if err := proto.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("stored lineage: %w", err)
	}
	return &l, nil
}

// ScanEntityPage reads the rows of an index scan (id, record, rev,
// lineage, key),
// read one past a page of size, into a page and its next page token.
func ScanEntityPage(rows Rows, size int) (*prismv1.EntityScanResponse, error) {
	resp := &prismv1.EntityScanResponse{}
	var last IndexPos
	for rows.Next() {
		var rec prismv1.EntityRecord
		var rev int64
		var key, lineage []byte
		if err := rows.Scan(&rec.Id, &rec.Record, &rev, &lineage, &key); err != nil {
			return nil, err
		}
		if len(resp.Records) == size {
			resp.NextPageToken = EncodeIndexToken(last)
			break
		}
		rec.Revision = uint64(rev)
		var err error
		if rec.Lineage, err = UnmarshalLineage(lineage); err != nil {
			return nil, err
		}
		resp.Records = append(resp.Records, &rec)
		last = IndexPos{Key: key, ID: rec.Id}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return resp, nil
}

// EntityScanSQL builds the query of an index scan over the tables
// <prefix>en_index and <prefix>en_records, with ?-placeholders, or $n ones
// when dollar is set; the page size plus one (the LIMIT) is the last
// argument, for the caller to append. The bounds that are set become range
// constraints on the index (idx, key, id), so the scan starts at the
// first row of the page in either direction and reads no more than a page.
func EntityScanSQL(req *prismv1.EntityScanRequest, after *IndexPos, prefix string, dollar bool) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		if dollar {
			return fmt.Sprintf("$%d", len(args))
		}
		return "?"
	}
	where = append(where, "i.idx = "+arg(req.GetIndex()))
	if len(req.GetFrom()) > 0 {
		where = append(where, "i.key >= "+arg(req.GetFrom()))
	}
	if len(req.GetTo()) > 0 {
		where = append(where, "i.key < "+arg(req.GetTo()))
	}
	cmp, order := ">", "ASC"
	if req.GetDescending() {
		cmp, order = "<", "DESC"
	}
	if after != nil {
		k := arg(after.Key)
		where = append(where, fmt.Sprintf("(i.key, i.id) %s (%s, %s)", cmp, k, arg(after.ID)))
	}
	limit := "?"
	if dollar {
		limit = fmt.Sprintf("$%d", len(args)+1)
	}
	return `SELECT r.id, r.record, r.rev, r.lineage, i.key FROM ` + prefix + `en_index i JOIN ` + prefix + `en_records r ON r.id = i.id WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY i.key ` + order + `, i.id ` + order + ` LIMIT ` + limit, args
}

// CollapseEntities returns the changes above checkpoint that decide the
// state a batch leaves: the last change of each record id (a put replaces
// the whole record and a delete removes it, so earlier ones leave no
// trace), in the order of those last changes.
func CollapseEntities(changes []*prismv1.EntityChange, checkpoint uint64) []*prismv1.EntityChange {
	last := make(map[string]int, len(changes))
	for i, c := range changes {
		if c.GetSeq() > checkpoint {
			last[string(c.GetEvent().GetId())] = i
		}
	}
	out := make([]*prismv1.EntityChange, 0, len(last))
	for i, c := range changes {
		if c.GetSeq() > checkpoint && last[string(c.GetEvent().GetId())] == i {
			out = append(out, c)
		}
	}
	return out
}

// EntityExportSQL is the query of an export of entity records (id >=
// the first argument, at most the second, in id order) with their index
// entries: one row per (record, index entry), or one with NULL idx and
// key for a record without entries, ordered by id then index name. One
// statement, so one consistent state of the store.
func EntityExportSQL(prefix string, dollar bool) string {
	a, b := "?", "?"
	if dollar {
		a, b = "$1", "$2"
	}
	return `SELECT r.id, r.record, r.rev, r.lineage, i.idx, i.key FROM (SELECT id, record, rev, lineage FROM ` + prefix + `en_records WHERE id >= ` + a +
		` ORDER BY id LIMIT ` + b + `) r LEFT JOIN ` + prefix + `en_index i ON i.id = r.id ORDER BY r.id, i.idx`
}

// ExportFrom is the first argument of EntityExportSQL for from: the
// smallest id, 0x00, for none (ids are never empty, and SQLite binds an
// empty BLOB as NULL).
func ExportFrom(from []byte) []byte {
	if len(from) == 0 {
		return []byte{0}
	}
	return from
}

// ScanEntityExport reads the rows of EntityExportSQL into records.
func ScanEntityExport(rows Rows) ([]*prismv1.EntityRecord, error) {
	var out []*prismv1.EntityRecord
	for rows.Next() {
		var id, record, lineage, key []byte
		var rev int64
		var idx *string
		if err := rows.Scan(&id, &record, &rev, &lineage, &idx, &key); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || string(out[n-1].GetId()) != string(id) {
			l, err := UnmarshalLineage(lineage)
			if err != nil {
				return nil, err
			}
			out = append(out, &prismv1.EntityRecord{Id: id, Record: record, Revision: uint64(rev), Lineage: l})
		}
		if idx != nil {
			rec := out[len(out)-1]
			rec.Indexes = append(rec.Indexes, &prismv1.IndexEntry{Index: *idx, Key: NonNil(key)})
		}
	}
	return out, rows.Err()
}
