package natskv

import (
	"context"
	"fmt"

	"github.com/prism-data/prism/backends/internal/kit"
)

// SweepExpired deletes the items whose expire_time <= now (the Store's
// clock, read once per call) and removes the records left without items.
// It does not change the checkpoint or any revision: expiry is not a write.
// It returns the number of items deleted, also when it fails part way (the
// sub-batches committed before the error stay deleted).
//
// The deletes go in atomic batches of at most 1000 messages with the record
// entries they change, and each batch re-publishes the checkpoint unchanged
// with the expected-sequence check: a sweep must not interleave with a batch
// that reads and rewrites the same record entries (it would resurrect a
// record the sweep emptied, or drop one the batch refilled), so it is
// serialized with this Store's writers and refused with ErrConflict if
// another process wrote meanwhile. A refused or interrupted sweep is simply
// run again: it is idempotent.
//
// Errors: ErrClosed after Close; ErrConflict; ctx's error; otherwise the
// NATS error.
func (s *Store) SweepExpired(ctx context.Context) (int64, error) {
	if err := s.acquire(); err != nil {
		return 0, fmt.Errorf("sweep expired items: %w", err)
	}
	defer s.gate.Leave()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n, err := s.sweep(ctx)
	if err != nil {
		return n, fmt.Errorf("sweep expired items: %w", err)
	}
	return n, nil
}

func (s *Store) sweep(ctx context.Context) (int64, error) {
	nowSec, nowNanos := kit.SplitTime(s.now())
	cp, cpSeq, err := s.readCheckpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	type expiredRecord struct {
		r    *recState
		keys []string
	}
	var expired []expiredRecord
	err = s.scanRecords(ctx, 0, func(id []byte, rec *record) error {
		var keys []string
		for _, e := range rec.keys {
			if !e.exp.live(nowSec, nowNanos) {
				keys = append(keys, string(e.key))
			}
		}
		if len(keys) > 0 {
			r := &recState{enc: EncodeToken(id), keys: rec.keyMap(), rev: rec.revision, stored: true}
			expired = append(expired, expiredRecord{r, keys})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}

	w := s.newWriter(ctx, cp, cpSeq)
	var total, pending int64
	for _, x := range expired {
		if w.count() > 0 && w.count()+len(x.keys)+2 > maxBatchMsgs {
			if err := w.commit(cp); err != nil {
				return total, err
			}
			total, pending = total+pending, 0
		}
		for _, k := range x.keys {
			w.delItem(x.r, k)
		}
		w.markDirty(x.r) // the revision stays: expiry is not a write
		pending += int64(len(x.keys))
		if w.count()+1 > maxBatchMsgs {
			if err := w.commitChunked(cp); err != nil {
				return total, err
			}
			total, pending = total+pending, 0
		}
	}
	if w.count() > 0 {
		if err := w.commit(cp); err != nil {
			return total, err
		}
		total += pending
	}
	return total, nil
}
