package replay

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// entry is a record as Verify compares it: its id, its revision and a
// digest of its content, never its values (they may hold PII and the
// scan must stay small in memory).
type entry struct {
	id  []byte
	rev uint64
	// sum is the SHA-256 of the record's items: keys, values and expire
	// times, in key order.
	sum [sha256.Size]byte
	// soonest is the earliest expire time of its items, zero if none
	// expires.
	soonest time.Time
}

// read is one read of a target: any snapshot it saw had applied the
// stream up to at least lo and at most hi (the checkpoints read before and
// after it), and it ended at wall time at.
type read struct {
	lo, hi uint64
	at     time.Time
}

// obs is what one read saw of one record: the record (nil when absent)
// and the read.
type obs struct {
	e *entry
	r *read
}

// digester turns records into entries, reusing its hash state and buffer.
type digester struct {
	h   hash.Hash
	buf []byte
}

func newDigester() *digester { return &digester{h: sha256.New()} }

// digest encodes every field with a length or a fixed size, so distinct
// item lists never share an encoding.
func (d *digester) digest(r *prismv1.GetResponse) entry {
	// The id is copied so that the entry does not keep the record's buffers.
	e := entry{id: slices.Clone(r.GetId()), rev: r.GetRevision()}
	d.h.Reset()
	b := binary.AppendUvarint(d.buf[:0], uint64(len(r.GetItems())))
	for _, it := range r.GetItems() {
		b = binary.AppendUvarint(b, uint64(len(it.GetKey())))
		b = append(b, it.GetKey()...)
		b = binary.AppendUvarint(b, uint64(len(it.GetValue())))
		b = append(b, it.GetValue()...)
		if et := it.GetExpireTime(); et != nil {
			b = append(b, 1)
			b = binary.BigEndian.AppendUint64(b, uint64(et.GetSeconds()))
			b = binary.BigEndian.AppendUint32(b, uint32(et.GetNanos()))
			if t := et.AsTime(); e.soonest.IsZero() || t.Before(e.soonest) {
				e.soonest = t
			}
		} else {
			b = append(b, 0)
		}
		// Flush now and then so a record with many items does not grow
		// the buffer without bound.
		if len(b) > 64<<10 {
			d.h.Write(b)
			b = b[:0]
		}
	}
	d.h.Write(b)
	d.buf = b[:0]
	d.h.Sum(e.sum[:0])
	return e
}

// verdict is what a comparison of two observations of one record proves.
type verdict int

const (
	// same: the targets held the same record (or both none).
	same verdict = iota
	// missing: old holds the record, new does not.
	missing
	// extra: new holds the record, old does not.
	extra
	// differing: both hold it with different items or revisions.
	differing
	// undecided: the observations differ, but a write applied to one
	// target and not yet to the other could explain it.
	undecided
)

// classify compares what old and new saw of one record and says what that
// proves, if both targets apply the same stream correctly.
//
// A target that holds a record at revision r has applied every event of
// the record up to its read, and the last one was r: the record was in
// that state from stream position r until at least the read's lo. Two
// such observations that share a position, yet differ, cannot both be
// right. A target that does not hold the record saw it absent at some
// position in [lo, hi] of its read; that is a proven difference only if
// the whole window lies where the other target's record was in its state.
//
// Expiry is not in the stream: a sweep whose clock is ahead of Verify's
// may have removed an item still live at the read's now. A difference on
// a record with an item expiring before the read ended plus skew stays
// undecided until that item has expired.
func classify(o, n obs, skew time.Duration) verdict {
	switch {
	case o.e == nil && n.e == nil:
		return same
	case o.e != nil && n.e != nil && o.e.rev == n.e.rev && o.e.sum == n.e.sum:
		return same
	case impossible(o) || impossible(n):
		// A revision above the checkpoint its target had applied after the
		// read: no event made it.
		switch {
		case n.e == nil:
			return missing
		case o.e == nil:
			return extra
		}
		return differing
	case expiresSoon(o, n, skew) || expiresSoon(n, o, skew):
		return undecided
	case o.e != nil && n.e != nil:
		if o.e.rev == n.e.rev || max(o.e.rev, n.e.rev) <= min(o.r.lo, n.r.lo) {
			return differing
		}
	case n.e == nil:
		if o.e.rev <= n.r.lo && n.r.hi <= o.r.lo {
			return missing
		}
	default:
		if n.e.rev <= o.r.lo && o.r.hi <= n.r.lo {
			return extra
		}
	}
	return undecided
}

// impossible reports whether x holds the record at a revision its target
// had not applied by the end of the read.
func impossible(x obs) bool { return x.e != nil && x.e.rev > x.r.hi }

// expiresSoon reports whether x holds the record with an item that a sweep
// running by the end of either read, with a clock up to skew ahead, could
// have removed.
func expiresSoon(x, y obs, skew time.Duration) bool {
	if x.e == nil || x.e.soonest.IsZero() {
		return false
	}
	end := x.r.at
	if y.r.at.After(end) {
		end = y.r.at
	}
	return !x.e.soonest.After(end.Add(skew))
}
