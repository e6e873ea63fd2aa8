package natskv

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// ExportRecords reads records in bulk, in byte order of id: up to limit
// records with id >= from (nil or empty from is the start: the empty id is
// the smallest), each with all its items that are live at now (expire_time
// after now), in key order, and its revision (the stream sequence of its
// last applied change, as GetItems returns it). Records without a live item
// at now are left out. It returns fewer than limit records only when no more
// exist. To read the next page, pass the last record's id followed by a
// zero byte, the smallest id after it.
//
// now, not the store's clock, decides expiry. A page is one committed state
// of the bucket: the list of records (ScanIDs' list, read again whenever a
// batch was committed since: O(records)), then the page's record entries
// and item values as of that state's checkpoint message, in requests of up
// to 1000 subjects; the page is read again if a writer replaced one of them
// meanwhile. Pages are not from one state.
//
// Errors: ErrInvalidRequest for limit < 1; ErrConflict if writers changed
// the page under every retry; ErrClosed after Close; ctx's error;
// otherwise the NATS error.
func (s *Store) ExportRecords(ctx context.Context, from []byte, limit int, now time.Time) ([]*prismv1.GetResponse, error) {
	return kit.Do(&s.gate, ErrClosed, "export records", kitErrors.Request(kit.CheckExport(limit)), func() ([]*prismv1.GetResponse, error) {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		var recs []*prismv1.GetResponse
		err := s.retry(ctx, func() (bool, error) {
			var err error
			recs, err = s.exportRecords(ctx, from, limit, now)
			return recs != nil, err
		})
		return recs, err
	})
}

// exportRecords makes one attempt; it returns nil records if a writer
// replaced an entry of the page since the state it lists.
func (s *Store) exportRecords(ctx context.Context, from []byte, limit int, now time.Time) ([]*prismv1.GetResponse, error) {
	ids, cpSeq, err := s.recordIDs(ctx)
	if err != nil {
		return nil, err
	}
	nowSec, nowNanos := kit.SplitTime(now)
	out := []*prismv1.GetResponse{}
	var subjects []string
	for i := searchIDs(ids, from, false); i < len(ids) && len(out) < limit; i++ {
		if ids[i].live(nowSec, nowNanos) {
			out = append(out, &prismv1.GetResponse{Id: kit.NonNil(ids[i].id)})
			subjects = append(subjects, s.prefix+recordKey(EncodeToken(ids[i].id)))
		}
	}
	if len(out) == 0 {
		return out, nil
	}

	entries := make(map[string]*record, len(out))
	err = s.lastMsgs(ctx, subjects, cpSeq, func(m *jetstream.RawStreamMsg) error {
		if isTombstone(m) {
			return nil
		}
		rec, err := decodeRecord(m.Data)
		if err != nil {
			return fmt.Errorf("record %s: %w", m.Subject, err)
		}
		entries[m.Subject] = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	var itemSubjects []string
	keys := make([][]indexEntry, len(out))
	for i, r := range out {
		rec := entries[subjects[i]]
		if rec == nil {
			return nil, nil // rewritten since the state listed
		}
		r.Revision = rec.revision
		keys[i] = rec.liveKeys(nowSec, nowNanos)
		for _, e := range keys[i] {
			itemSubjects = append(itemSubjects, s.prefix+itemKey(EncodeToken(r.Id), e.key))
		}
	}
	values := make(map[string][]byte, len(itemSubjects))
	err = s.lastMsgs(ctx, itemSubjects, cpSeq, func(m *jetstream.RawStreamMsg) error {
		if !isTombstone(m) {
			values[m.Subject] = m.Data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := 0
	for i, r := range out {
		r.Items = make([]*prismv1.Item, 0, len(keys[i]))
		for _, e := range keys[i] {
			data, ok := values[itemSubjects[n]]
			n++
			if !ok {
				return nil, nil // rewritten since the state listed
			}
			_, value, err := decodeItem(data)
			if err != nil {
				return nil, fmt.Errorf("item of %x: %w", r.Id, err)
			}
			r.Items = append(r.Items, &prismv1.Item{Key: kit.NonNil(e.key), Value: kit.NonNil(value), ExpireTime: e.exp.timestamp()})
		}
	}
	return out, nil
}
