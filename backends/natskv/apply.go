package natskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

const (
	// maxBatchMsgs is the most messages JetStream takes in one atomic batch
	// (the server's default max_batch_size).
	maxBatchMsgs = 1000
	// maxChunkItems is the most item messages of one sub-batch that also
	// carries a record entry and the checkpoint.
	maxChunkItems = maxBatchMsgs - 2
	// maxFilters bounds the subjects of one multi-last direct get (the
	// server answers at most 1024 messages).
	maxFilters = 1000
	// tombstoneTTL is how long a KV delete marker stays: the state never
	// needs it (a missing key is a deleted key), only watchers of the
	// bucket do.
	tombstoneTTL = time.Hour

	kvOperation = "KV-Operation"
)

// ApplyKeyValue applies changes in order, together with the checkpoint
// through, as one atomic batch on the bucket's stream (several for a batch
// of more than 1000 messages, each with the checkpoint of its last change).
//
// Changes with Seq <= the stored checkpoint are skipped, so re-applying a
// batch after a redelivery or in a replay has no further effect. If through
// <= the stored checkpoint the call does nothing. An empty changes slice
// with through above the checkpoint only advances it.
//
// A put sets its items (key -> value, with expire_time) and sets the
// record's revision to the change's Seq; an empty put only moves the
// revision of an existing record. A delete with keys removes those items,
// one without keys removes the whole record; a delete of a record that
// keeps items sets its revision. A replace (written by compaction, ADR 012)
// makes the record hold exactly its items, with the change's Seq as
// revision; a replace without items removes the record. A record left
// without items is removed.
//
// Errors: an *InvalidChangeError (errors.Is ErrInvalidChange, permanent)
// for a nil change or event, an event that is neither put, delete nor
// replace, a nil item or an invalid expire_time, checked before anything is
// written; ErrInvalidBatch for sequences that are 0, not strictly
// increasing or greater than through or through above math.MaxInt64;
// ErrConflict when another writer committed after this call read the
// checkpoint (nothing of the refused sub-batch is stored; retry); ErrClosed
// after Close; otherwise the NATS error.
func (s *Store) ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "key-value", through, kitErrors.Batch(kit.CheckKeyValueBatch(changes, through)), func() error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return s.applyKeyValue(ctx, changes, through)
	})
}

func (s *Store) applyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	cp, cpSeq, err := s.readCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if through <= cp {
		return nil
	}
	todo := changes
	for len(todo) > 0 && todo[0].GetSeq() <= cp {
		todo = todo[1:] // sequences increase: the skipped ones lead
	}
	w := s.newWriter(ctx, cp, cpSeq)
	ids := make([][]byte, 0, len(todo))
	for _, c := range todo {
		ids = append(ids, c.GetEvent().GetId())
	}
	if err := w.load(ids); err != nil {
		return err
	}
	for _, c := range todo {
		if err := w.apply(c); err != nil {
			return fmt.Errorf("seq %d: %w", c.GetSeq(), err)
		}
	}
	if w.count() > 0 || w.cp < through {
		return w.commit(through)
	}
	return nil
}

// recState is a record as a writer changes it.
type recState struct {
	enc    string            // the id's token
	keys   map[string]expiry // the index: every stored item, expired or not
	rev    uint64
	stored bool // the stream holds an entry for it
	dirty  bool // its entry must be written with the pending sub-batch
}

// writer turns changes into atomic sub-batches. It holds the state of the
// records it touches, the pending item messages (one per subject, the last
// wins) and the checkpoint with the stream sequence of its message, which
// each commit expects and moves.
type writer struct {
	s     *Store
	ctx   context.Context
	cp    uint64
	cpSeq uint64

	lastSeq uint64 // seq of the last change in the pending sub-batch
	recs    map[string]*recState
	items   []*nats.Msg
	itemAt  map[string]int // subject -> index in items
	dirty   []*recState
}

func (s *Store) newWriter(ctx context.Context, cp, cpSeq uint64) *writer {
	return &writer{s: s, ctx: ctx, cp: cp, cpSeq: cpSeq, recs: make(map[string]*recState), itemAt: make(map[string]int)}
}

// load reads the stored entries of the records ids.
func (w *writer) load(ids [][]byte) error {
	subjects := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := w.recs[string(id)]; ok {
			continue
		}
		enc := EncodeToken(id)
		w.recs[string(id)] = &recState{enc: enc, keys: map[string]expiry{}}
		subjects = append(subjects, w.s.prefix+recordKey(enc))
	}
	return w.s.lastMsgs(w.ctx, subjects, 0, func(m *jetstream.RawStreamMsg) error {
		id, err := DecodeToken(m.Subject[len(w.s.prefix)+len(recordPrefix):])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		r := w.recs[string(id)]
		if r == nil || isTombstone(m) {
			return nil
		}
		rec, err := decodeRecord(m.Data)
		if err != nil {
			return fmt.Errorf("record %s: %w", m.Subject, err)
		}
		r.keys, r.rev, r.stored = rec.keyMap(), rec.revision, true
		return nil
	})
}

func isTombstone(m *jetstream.RawStreamMsg) bool {
	op := m.Header.Get(kvOperation)
	return op == "DEL" || op == "PURGE"
}

// lastMsgs calls fn with the last message of each of subjects (those that
// have one), at or below upTo when it is not 0, in requests of at most
// maxFilters subjects; each request is one isolated read on the server.
func (s *Store) lastMsgs(ctx context.Context, subjects []string, upTo uint64, fn func(*jetstream.RawStreamMsg) error) error {
	for len(subjects) > 0 {
		chunk := subjects[:min(len(subjects), maxFilters)]
		subjects = subjects[len(chunk):]
		var opts []jetstreamext.GetLastForOpt
		if upTo > 0 {
			opts = append(opts, jetstreamext.GetLastMsgsUpToSeq(upTo))
		}
		msgs, err := jetstreamext.GetLastMsgsFor(ctx, s.js, s.stream.CachedInfo().Config.Name, chunk, opts...)
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("get last messages: %w", err))
		}
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return ctxErr(ctx, fmt.Errorf("get last messages: %w", err))
			}
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *writer) count() int { return len(w.items) + len(w.dirty) }

func (w *writer) setItem(m *nats.Msg) {
	if i, ok := w.itemAt[m.Subject]; ok {
		w.items[i] = m
		return
	}
	w.itemAt[m.Subject] = len(w.items)
	w.items = append(w.items, m)
}

func (w *writer) markDirty(r *recState) {
	if !r.dirty {
		r.dirty = true
		w.dirty = append(w.dirty, r)
	}
}

func (w *writer) putItem(r *recState, it *prismv1.Item) {
	exp := expiryOf(it.GetExpireTime())
	m := nats.NewMsg(w.s.prefix + itemKey(r.enc, it.GetKey()))
	m.Data = encodeItem(exp, it.GetValue())
	w.setItem(m)
	r.keys[string(it.GetKey())] = exp
}

func (w *writer) delItem(r *recState, key string) {
	w.setItem(w.s.tombstone(itemKey(r.enc, []byte(key))))
	delete(r.keys, key)
}

func (s *Store) tombstone(key string) *nats.Msg {
	m := nats.NewMsg(s.prefix + key)
	m.Header.Set(kvOperation, "DEL")
	m.Header.Set(jetstream.MsgTTLHeader, tombstoneTTL.String())
	return m
}

// estimate bounds the messages change c adds to a sub-batch.
func estimate(c *prismv1.KeyValueChange, r *recState) int {
	switch ch := c.GetEvent().GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		return len(ch.Put.GetItems()) + 1
	case *prismv1.KeyValueEvent_Delete:
		if keys := ch.Delete.GetKeys(); len(keys) > 0 {
			return len(keys) + 1
		}
		return len(r.keys) + 1
	case *prismv1.KeyValueEvent_Replace:
		return len(ch.Replace.GetItems()) + len(r.keys) + 1
	}
	return 1
}

func (w *writer) apply(c *prismv1.KeyValueChange) error {
	r := w.recs[string(c.GetEvent().GetId())]
	if r == nil { // load puts every id of the batch in recs
		return fmt.Errorf("internal error: record %q was not loaded", c.GetEvent().GetId())
	}
	n := estimate(c, r)
	if w.count() > 0 && w.count()+n+1 > maxBatchMsgs {
		if err := w.commit(w.lastSeq); err != nil {
			return err
		}
	}
	if n+1 > maxBatchMsgs {
		return w.applyLarge(c, r)
	}
	seq := c.GetSeq()
	switch ch := c.GetEvent().GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		items := ch.Put.GetItems()
		if len(items) == 0 && len(r.keys) == 0 {
			break // an empty put does not create a record
		}
		for _, it := range items {
			w.putItem(r, it)
		}
		r.rev = seq
		w.markDirty(r)
	case *prismv1.KeyValueEvent_Delete:
		w.deleteKeys(r, ch.Delete.GetKeys())
		if len(r.keys) > 0 {
			r.rev = seq
		}
		w.markDirty(r)
	case *prismv1.KeyValueEvent_Replace:
		items := ch.Replace.GetItems()
		w.deleteOthers(r, items)
		for _, it := range items {
			w.putItem(r, it)
		}
		r.rev = seq
		w.markDirty(r)
	}
	w.lastSeq = seq
	return nil
}

// deleteOthers removes from r every key that items do not set.
func (w *writer) deleteOthers(r *recState, items []*prismv1.Item) {
	keep := make(map[string]bool, len(items))
	for _, it := range items {
		keep[string(it.GetKey())] = true
	}
	for k := range r.keys {
		if !keep[k] {
			w.delItem(r, k)
		}
	}
}

// deleteKeys removes keys from r, or every key when keys is empty.
func (w *writer) deleteKeys(r *recState, keys [][]byte) {
	if len(keys) == 0 {
		for k := range r.keys {
			w.delItem(r, k)
		}
		return
	}
	for _, k := range keys {
		if _, ok := r.keys[string(k)]; ok {
			w.delItem(r, string(k))
		}
	}
}

// applyLarge applies a change too large for one atomic batch (the pending
// sub-batch is empty). A put writes its items in sub-batches that keep the
// checkpoint where it is: items missing from the record's index are not
// visible, so they appear with the last sub-batch, which writes the index
// and moves the checkpoint. A delete writes the index and the checkpoint
// with its first deletes and the remaining deletes after: the deleted items
// vanish at once. A replace does both: its items as a put's, then the
// deletes of the keys it drops as a delete's, with the index that lists
// only its keys. A crash in between leaves only invisible items behind.
func (w *writer) applyLarge(c *prismv1.KeyValueChange, r *recState) error {
	seq := c.GetSeq()
	switch ch := c.GetEvent().GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		items := ch.Put.GetItems()
		for len(items) > maxChunkItems {
			for _, it := range items[:maxChunkItems] {
				w.putItem(r, it)
			}
			items = items[maxChunkItems:]
			if err := w.commit(w.cp); err != nil {
				return err
			}
		}
		for _, it := range items {
			w.putItem(r, it)
		}
		r.rev = seq
		w.markDirty(r)
		if err := w.commit(seq); err != nil {
			return err
		}
	case *prismv1.KeyValueEvent_Delete:
		w.deleteKeys(r, ch.Delete.GetKeys())
		if len(r.keys) > 0 {
			r.rev = seq
		}
		w.markDirty(r)
		if err := w.commitChunked(seq); err != nil {
			return err
		}
	case *prismv1.KeyValueEvent_Replace:
		// The new items first, like a large put's, keeping the
		// checkpoint; then the deletes of the other keys, with the index
		// and the checkpoint in the first of their sub-batches.
		items := ch.Replace.GetItems()
		keys := r.keys
		r.keys = make(map[string]expiry, len(keys))
		for len(items) > 0 {
			n := min(len(items), maxChunkItems)
			for _, it := range items[:n] {
				w.putItem(r, it)
			}
			items = items[n:]
			if err := w.commit(w.cp); err != nil {
				return err
			}
		}
		for k := range keys {
			if _, ok := r.keys[k]; !ok {
				w.setItem(w.s.tombstone(itemKey(r.enc, []byte(k))))
			}
		}
		r.rev = seq
		w.markDirty(r)
		if err := w.commitChunked(seq); err != nil {
			return err
		}
	}
	w.lastSeq = seq
	return nil
}

// commitChunked commits the pending messages with checkpoint cp in as many
// sub-batches as they need, the record entries in the first.
func (w *writer) commitChunked(cp uint64) error {
	rest := w.items
	w.items, w.itemAt = nil, make(map[string]int)
	first := true
	for first || len(rest) > 0 {
		n := min(len(rest), maxBatchMsgs-1-len(w.dirty))
		w.items = rest[:n]
		rest = rest[n:]
		if err := w.commit(cp); err != nil {
			return err
		}
		first = false
	}
	return nil
}

// commit publishes the pending sub-batch with checkpoint cp as one atomic
// batch: the item messages, the dirty record entries, then the checkpoint,
// which expects the checkpoint message this writer last saw.
func (w *writer) commit(cp uint64) error {
	msgs := make([]*nats.Msg, 0, w.count()+1)
	msgs = append(msgs, w.items...)
	for _, r := range w.dirty {
		switch {
		case len(r.keys) > 0:
			m := nats.NewMsg(w.s.prefix + recordKey(r.enc))
			m.Data = encodeRecord(r.rev, r.keys)
			msgs = append(msgs, m)
			r.stored = true
		case r.stored:
			msgs = append(msgs, w.s.tombstone(recordKey(r.enc)))
			r.stored = false
		}
		r.dirty = false
	}
	seq, err := w.s.publish(w.ctx, msgs, cp, w.cpSeq)
	if err != nil {
		return err
	}
	w.cp, w.cpSeq = cp, seq
	w.items, w.dirty = w.items[:0], w.dirty[:0]
	clear(w.itemAt)
	return nil
}

// publish appends the checkpoint message (cp, expecting the checkpoint
// message at stream sequence cpSeq, none if 0) to msgs, publishes them as
// one atomic batch and returns the stream sequence of the checkpoint
// message.
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg, cp, cpSeq uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m := nats.NewMsg(s.prefix + checkpointKey)
	m.Data = strconv.AppendUint(nil, cp, 10)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(cpSeq, 10))
	msgs = append(msgs, m)
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, fmt.Errorf("commit %d messages: %w: %v", len(msgs), ErrConflict, err)
		}
		return 0, ctxErr(ctx, fmt.Errorf("commit %d messages: %w", len(msgs), err))
	}
	return ack.Sequence, nil
}
