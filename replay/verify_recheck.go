package replay

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// recheck reads the undecided records again, round after round, until
// each is decided or the rounds are spent; the rest are unsettled.
//
// A round fences both targets, then reads old, waits until new has passed
// what old had applied by the end of that read and reads new, then waits
// until old has passed that and reads old again. The order matters for a
// record one target lacks: its absence is proven only by a read of the
// other target that starts after the absence was seen (see classify), so
// the reads alternate and each pair of consecutive reads is compared.
func (v *verifier) recheck(ctx context.Context) error {
	for round := 1; round <= v.opts.recheckRounds && len(v.pending) > 0; round++ {
		ids := v.pending
		v.pending = nil
		if round == 1 {
			v.rechecked = int64(len(ids))
		}
		v.rounds = round
		v.progress(Progress{Phase: "recheck", Round: round, Pending: len(ids)})
		if err := v.recheckRound(ctx, ids); err != nil {
			// What was not decided stays counted as unsettled.
			v.settle(ids)
			return fmt.Errorf("round %d: %w", round, err)
		}
	}
	v.settle(v.pending)
	v.pending = nil
	return nil
}

// settle counts ids as unsettled.
func (v *verifier) settle(ids []pendingID) {
	for _, p := range ids {
		v.record(p, undecided, true)
	}
}

func (v *verifier) recheckRound(ctx context.Context, ids []pendingID) error {
	if err := v.waitExpired(ctx); err != nil {
		return err
	}
	if _, err := v.fence(ctx); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	now := time.Now()
	o1, r1, err := v.readIDs(ctx, v.old, ids, now, 0)
	if err != nil {
		return fmt.Errorf("old target: %w", err)
	}
	n, rn, err := v.readIDs(ctx, v.new, ids, now, r1.hi)
	if err != nil {
		return fmt.Errorf("new target: %w", err)
	}
	o2, _, err := v.readIDs(ctx, v.old, ids, now, rn.hi)
	if err != nil {
		return fmt.Errorf("old target: %w", err)
	}
	v.soonest = time.Time{}
	for i, p := range ids {
		v.record(p, v.combine(o1[i], n[i], o2[i]), false)
	}
	return nil
}

// combine decides a record from the round's three reads by comparing
// each pair of consecutive ones: a proven difference in either pair wins
// (it cannot come from a live write), then a match in either (both
// targets held the same state at the same position).
func (v *verifier) combine(o1, n, o2 obs) verdict {
	first, second := classify(o1, n, v.opts.clockSkew), classify(o2, n, v.opts.clockSkew)
	switch {
	case second != same && second != undecided:
		return second
	case first != same && first != undecided:
		return first
	case first == same || second == same:
		return same
	}
	v.noteExpiry(o1, n)
	v.noteExpiry(o2, n)
	return undecided
}

// recheckGap is how far apart (in records of the scan) two records to
// recheck may be and still be read with one walk from the first to the
// second rather than one lookup each: a lookup costs about as much as
// reading this many records in a walk, and on a NATS KV target a lookup
// costs a whole listing.
const recheckGap = 100

// readIDs waits until src has reached checkpoint after, then reads the
// records ids from it, in one read whose bounds are the checkpoints before
// and after all of it. Runs of ids close to each other are read in one
// walk of ExportRecords pages. It returns one obs per id, all with that
// read.
func (v *verifier) readIDs(ctx context.Context, src Source, ids []pendingID, now time.Time, after uint64) ([]obs, *read, error) {
	name := "new"
	if src == v.old {
		name = "old"
	}
	if err := v.waitFor(ctx, src, name, after); err != nil {
		return nil, nil, err
	}
	r := &read{}
	var err error
	if r.lo, err = src.Checkpoint(ctx); err != nil {
		return nil, nil, err
	}
	out := make([]obs, len(ids))
	d := newDigester()
	for start := 0; start < len(ids); {
		end := start + 1
		for end < len(ids) && ids[end].pos-ids[end-1].pos <= recheckGap {
			end++
		}
		if err := v.readRun(ctx, src, ids[start:end], out[start:end], now, d); err != nil {
			return nil, nil, err
		}
		start = end
	}
	if r.hi, err = src.Checkpoint(ctx); err != nil {
		return nil, nil, err
	}
	r.at = time.Now()
	for i := range out {
		out[i].r = r
	}
	return out, r, nil
}

// readRun reads the records run (in id order) with ExportRecords pages
// from the first one until past the last, and sets out[i].e to the entry
// of run[i] where src has it.
func (v *verifier) readRun(ctx context.Context, src Source, run []pendingID, out []obs, now time.Time, d *digester) error {
	// The scan saw span records from the first to the last; the target
	// may hold a few more by now, and the loop reads on if so.
	limit := int(min(run[len(run)-1].pos-run[0].pos+1, int64(v.opts.pageSize)))
	from, j := run[0].id, 0
	for j < len(run) {
		recs, err := src.ExportRecords(ctx, from, limit, now)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			for j < len(run) && bytes.Compare(run[j].id, rec.GetId()) < 0 {
				j++ // absent
			}
			if j == len(run) {
				break
			}
			if bytes.Equal(run[j].id, rec.GetId()) {
				e := d.digest(rec)
				out[j].e = &e
				j++
			}
		}
		if len(recs) < limit { // nothing follows
			return nil
		}
		from = next(recs[len(recs)-1].GetId())
	}
	return nil
}

// noteExpiry remembers the latest expire time that may have kept a record
// undecided, so that the next round starts after it.
func (v *verifier) noteExpiry(o, n obs) {
	for _, x := range [][2]obs{{o, n}, {n, o}} {
		if expiresSoon(x[0], x[1], v.opts.clockSkew) && x[0].e.soonest.After(v.soonest) {
			v.soonest = x[0].e.soonest
		}
	}
}

// waitExpired waits until the items that kept records undecided in the
// previous round have expired (at most the clock skew), so that this
// round's now leaves them out on both targets.
func (v *verifier) waitExpired(ctx context.Context) error {
	d := time.Until(v.soonest)
	if d < 0 {
		return nil
	}
	t := time.NewTimer(d + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
