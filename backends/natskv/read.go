package natskv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

const (
	// scanBatch is the number of record entries one request of a scan asks
	// for.
	scanBatch = 1000
	// A read that finds the state changed under it retries, at most
	// readAttempts times; from the lockAfter-th attempt on, it keeps this
	// Store's writers out while it reads.
	readAttempts = 20
	lockAfter    = 3
)

// GetItems reads one page of the items of record req.Id in key order: all
// items, only those in req.Keys, or those in req.Range [start, end) (an
// empty end is unbounded). req.PageSize 0 means 100; it is capped at 1000.
// req.PageToken is the NextPageToken of the previous page, "" for the first.
// req.MinSeq is ignored: waiting for the projection is the caller's job.
//
// Expired items (expire_time <= now) are never returned. The page and the
// revision come from one state of the record: the record entry is read, then
// the page's items as of its stream sequence, and the read is retried if a
// writer replaced one of them meanwhile. Revision is the stream sequence of
// the record's last applied change; a record that does not exist or has no
// live item gives an empty response with Revision 0. NextPageToken is empty
// on the last page. Cost: the record's key index plus one page of values.
//
// Errors: ErrInvalidPageToken (wrapped) for a token GetItems did not make;
// ErrInvalidRequest for a nil request or one with both keys and range;
// ErrConflict if writers changed the record under every retry; ErrClosed
// after Close; ctx's error; otherwise the NATS error.
func (s *Store) GetItems(ctx context.Context, req *prismv1.GetRequest) (*prismv1.GetResponse, error) {
	after, hasAfter, err := kit.CheckGet(req)
	return kit.Do(&s.gate, ErrClosed, "get items", kitErrors.Request(err), func() (*prismv1.GetResponse, error) {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		var resp *prismv1.GetResponse
		err := s.retry(ctx, func() (bool, error) {
			var err error
			resp, err = s.getItems(ctx, req, after, hasAfter)
			return resp != nil, err
		})
		return resp, err
	})
}

// retry runs read until it reports done, at most readAttempts times.
func (s *Store) retry(ctx context.Context, read func() (done bool, err error)) error {
	for attempt := range readAttempts {
		if attempt == lockAfter {
			s.wmu.RLock()
			defer s.wmu.RUnlock()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := read()
		if err != nil || done {
			return err
		}
	}
	return fmt.Errorf("%w: the state kept changing during %d reads", ErrConflict, readAttempts)
}

// getItems makes one attempt; it returns a nil response if a writer
// changed the record during it.
func (s *Store) getItems(ctx context.Context, req *prismv1.GetRequest, after []byte, hasAfter bool) (*prismv1.GetResponse, error) {
	id := req.GetId()
	enc := EncodeToken(id)
	m, err := s.stream.GetLastMsgForSubject(ctx, s.prefix+recordKey(enc))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return &prismv1.GetResponse{}, nil
	}
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("read record: %w", err))
	}
	if isTombstone(m) {
		return &prismv1.GetResponse{}, nil
	}
	rec, err := decodeRecord(m.Data)
	if err != nil {
		return nil, err
	}
	live := rec.liveKeys(kit.SplitTime(s.now()))
	if len(live) == 0 {
		return &prismv1.GetResponse{}, nil
	}

	var cands []indexEntry
	if keys := req.GetKeys(); len(keys) > 0 {
		want := make(map[string]bool, len(keys))
		for _, k := range keys {
			want[string(k)] = true
		}
		for _, e := range live {
			if want[string(e.key)] && (!hasAfter || bytes.Compare(e.key, after) > 0) {
				cands = append(cands, e)
			}
		}
	} else {
		start, end := req.GetRange().GetStart(), req.GetRange().GetEnd()
		for _, e := range live {
			if bytes.Compare(e.key, start) < 0 || hasAfter && bytes.Compare(e.key, after) <= 0 {
				continue
			}
			if len(end) > 0 && bytes.Compare(e.key, end) >= 0 {
				break
			}
			cands = append(cands, e)
		}
	}
	size := kit.PageSize(req.GetPageSize())
	page := cands[:min(size, len(cands))]
	resp := &prismv1.GetResponse{Id: kit.NonNil(id), Revision: rec.revision, Items: make([]*prismv1.Item, 0, len(page))}
	if len(cands) > size {
		resp.NextPageToken = kit.EncodeKeyToken(page[len(page)-1].key)
	}
	if len(page) == 0 {
		return resp, nil
	}

	subjects := make([]string, len(page))
	for i, e := range page {
		subjects[i] = s.prefix + itemKey(enc, e.key)
	}
	values := make(map[string][]byte, len(page))
	err = s.lastMsgs(ctx, subjects, m.Sequence, func(im *jetstream.RawStreamMsg) error {
		if !isTombstone(im) {
			values[im.Subject] = im.Data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, e := range page {
		data, ok := values[subjects[i]]
		if !ok {
			// Replaced after the record entry was read (a later batch
			// rewrote it, removing the version of this state): read again.
			return nil, nil
		}
		_, value, err := decodeItem(data)
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", subjects[i], err)
		}
		resp.Items = append(resp.Items, &prismv1.Item{Key: kit.NonNil(e.key), Value: value, ExpireTime: e.exp.timestamp()})
	}
	return resp, nil
}

// ScanIDs lists one page of the ids of records that have at least one live
// item, in byte order. req.PageSize 0 means 100; it is capped at 1000.
// req.PageToken is the NextPageToken of the previous page, "" for the first;
// NextPageToken is empty on the last page. req.MinSeq is ignored.
//
// Every page reads all record entries (O(records)) between two reads of the
// checkpoint, and reads again if a batch was committed in between, so a
// page shows the state after one batch.
//
// Errors: ErrInvalidPageToken (wrapped) for a token ScanIDs did not make;
// ErrInvalidRequest for a nil request; ErrConflict if writers committed
// during every retry; ErrClosed after Close; ctx's error; otherwise the
// NATS error.
func (s *Store) ScanIDs(ctx context.Context, req *prismv1.ScanRequest) (*prismv1.ScanResponse, error) {
	after, hasAfter, err := kit.CheckScan(req)
	return kit.Do(&s.gate, ErrClosed, "scan ids", kitErrors.Request(err), func() (*prismv1.ScanResponse, error) {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		return s.scanIDs(ctx, req, after, hasAfter)
	})
}

func (s *Store) scanIDs(ctx context.Context, req *prismv1.ScanRequest, after []byte, hasAfter bool) (*prismv1.ScanResponse, error) {
	ids, _, err := s.recordIDs(ctx)
	if err != nil {
		return nil, err
	}
	nowSec, nowNanos := kit.SplitTime(s.now())
	size := kit.PageSize(req.GetPageSize())
	i := 0
	if hasAfter {
		i = searchIDs(ids, after, true)
	}
	resp := &prismv1.ScanResponse{}
	for ; i < len(ids); i++ {
		if !ids[i].live(nowSec, nowNanos) {
			continue
		}
		if len(resp.Ids) == size {
			resp.NextPageToken = kit.EncodeKeyToken(resp.Ids[size-1])
			break
		}
		resp.Ids = append(resp.Ids, ids[i].id)
	}
	return resp, nil
}

// scanned is a record as a scan lists it: its id and the latest expiry of
// its items (forever if one never expires).
type scanned struct {
	id      []byte
	forever bool
	last    expiry
}

func (r scanned) live(nowSec int64, nowNanos int32) bool {
	return r.forever || r.last.live(nowSec, nowNanos)
}

// scanCache is the last list of records read, valid while the checkpoint
// message is the one at stream sequence cpSeq: every committed batch,
// sweeps included, writes a new one.
type scanCache struct {
	cpSeq uint64
	ids   []scanned // sorted by id
}

// searchIDs returns the index of the first of ids (sorted) above id, or at
// or above it if !strictly.
func searchIDs(ids []scanned, id []byte, strictly bool) int {
	i, _ := slices.BinarySearchFunc(ids, id, func(r scanned, id []byte) int {
		if c := bytes.Compare(r.id, id); c < 0 || c == 0 && strictly {
			return -1
		}
		return 1
	})
	return i
}

// recordIDs returns every stored record in byte order of id, from the cache
// if no batch was committed since it was filled, and the stream sequence of
// the checkpoint message of the state they are from (0 if nothing was ever
// committed).
func (s *Store) recordIDs(ctx context.Context) ([]scanned, uint64, error) {
	_, cpSeq, err := s.readCheckpoint(ctx)
	if err != nil || cpSeq == 0 { // nothing was ever committed
		return nil, 0, err
	}
	s.cacheMu.Lock()
	c := s.cache
	s.cacheMu.Unlock()
	if c != nil && c.cpSeq == cpSeq {
		return c.ids, cpSeq, nil
	}
	var ids []scanned
	err = s.retry(ctx, func() (bool, error) {
		ids = ids[:0]
		err := s.scanRecords(ctx, cpSeq, func(id []byte, rec *record) error {
			r := scanned{id: id}
			for _, e := range rec.keys {
				switch {
				case !e.exp.set:
					r.forever = true
				case !r.last.set || e.exp.sec > r.last.sec || e.exp.sec == r.last.sec && e.exp.nanos > r.last.nanos:
					r.last = e.exp
				}
			}
			ids = append(ids, r)
			return nil
		})
		if err != nil {
			return false, err
		}
		// The scan is a state of one batch only if no batch was committed
		// while it ran.
		_, now, err := s.readCheckpoint(ctx)
		if err != nil || now == cpSeq {
			return true, err
		}
		cpSeq = now
		return false, nil
	})
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(ids, func(a, b scanned) int { return bytes.Compare(a.id, b.id) })
	s.cacheMu.Lock()
	s.cache = &scanCache{cpSeq: cpSeq, ids: ids}
	s.cacheMu.Unlock()
	return ids, cpSeq, nil
}

// scanRecords calls fn with every record entry stored at or below stream
// sequence upTo (every one if upTo is 0), in stream order.
func (s *Store) scanRecords(ctx context.Context, upTo uint64, fn func(id []byte, rec *record) error) error {
	stream := s.stream.CachedInfo().Config.Name
	start := uint64(1)
	for {
		msgs, err := jetstreamext.GetBatch(ctx, s.js, stream, scanBatch,
			jetstreamext.GetBatchSeq(start), jetstreamext.GetBatchSubject(s.prefix+recordWildcard))
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("read records: %w", err))
		}
		got, more := 0, false
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return ctxErr(ctx, fmt.Errorf("read records: %w", err))
			}
			if upTo > 0 && m.Sequence > upTo {
				return nil
			}
			got++
			start = m.Sequence + 1
			more = m.Header.Get("Nats-Num-Pending") != "0"
			if isTombstone(m) {
				continue
			}
			id, err := DecodeToken(m.Subject[len(s.prefix)+len(recordPrefix):])
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			rec, err := decodeRecord(m.Data)
			if err != nil {
				return fmt.Errorf("record %s: %w", m.Subject, err)
			}
			if err := fn(id, rec); err != nil {
				return err
			}
		}
		if got == 0 || !more {
			return nil
		}
	}
}
