package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Source is a KeyValue projection target as Verify reads it;
// sqlite.Store, postgres.Store and natskv.Store implement it.
//
// Checkpoint returns the stream sequence of the last batch the target
// applied; it never goes down, and a read that starts after Checkpoint
// returned c sees everything up to c.
//
// ExportRecords returns up to limit records with id >= from, in byte order
// of id, each with its items live at now (in key order) and its revision,
// the stream sequence of its last applied change; records without a live
// item are left out. It returns fewer than limit only when no more exist.
// A nil or empty from is the start (the empty id is a valid id, and the
// smallest); the page after a record with id x starts at x followed by a
// zero byte, the smallest id above x, so no id is skipped or repeated. Each
// call reads one consistent state of the target.
type Source interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ExportRecords(ctx context.Context, from []byte, limit int, now time.Time) ([]*prismv1.GetResponse, error)
}

// ErrFenceTimeout is returned (wrapped) by Verify when a target does not
// reach the checkpoint the other one has reached within the fence timeout:
// its projector is stopped, failing or far behind.
var ErrFenceTimeout = errors.New("target did not catch up")

// Verify compares two targets that project the same stream, old and new,
// record by record, like Vitess's VDiff, and reports how many records
// matched, are missing from new, are extra in new and differ, with the
// smallest ids of each.
//
// It first waits until both targets have applied the stream up to the
// same checkpoint (the larger of their two checkpoints; bounded by
// WithFenceTimeout), then reads both in id order page by page, holding a
// few pages at a time whatever the size of the targets. It hashes each
// range of WithRangeSize records on each side; a range whose hashes agree
// matches as a whole, the records of one that does not are compared one
// by one. Records and revisions are compared: both are functions of the
// stream, so two correct targets agree on both.
//
// The targets keep applying live writes during the scan. A difference
// that a write applied to one target and not yet to the other could
// explain is not reported: the record is read again, after a new fence,
// for WithRecheckRounds rounds; what is still undecided after them is
// reported as unsettled (and the verification does not pass), never as
// a difference. A difference is reported only when both reads saw the
// record at a common stream position, so that a live write cannot explain
// it.
//
// The report never holds values, only ids. On error it returns what it
// had compared so far with the error: ctx's error, an error wrapping
// ErrFenceTimeout, an invalid option, or a target's error.
func Verify(ctx context.Context, old, new Source, opts ...VerifyOption) (Report, error) {
	o := defaultVerifyOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return Report{}, fmt.Errorf("verify: %w", err)
		}
	}
	if old == nil || new == nil {
		return Report{}, errors.New("verify: nil source")
	}
	v := &verifier{opts: o, old: old, new: new, start: time.Now()}
	v.missing.n, v.extra.n, v.differing.n, v.unsettled.n = o.sampleIDs, o.sampleIDs, o.sampleIDs, o.sampleIDs
	err := v.run(ctx)
	return v.report(), err
}

// verifier is the state of one Verify.
type verifier struct {
	opts     verifyOptions
	old, new Source
	start    time.Time

	checkpoint                           uint64
	oldRecords, newRecords               int64
	compared, matched                    int64
	nMissing, nExtra, nDiffering, nUnset int64
	ranges, rangesMismatched             int64
	rechecked                            int64
	rounds                               int
	missing, extra, differing, unsettled idSample

	// pending are the records to read again, in id order.
	pending []pendingID
	// soonest is the latest expire time of an item that may have kept a
	// pending record undecided: the next round waits until it passed.
	soonest time.Time
}

func (v *verifier) run(ctx context.Context) error {
	v.progress(Progress{Phase: "fence"})
	c, err := v.fence(ctx)
	if err != nil {
		return fmt.Errorf("verify: fence: %w", err)
	}
	v.checkpoint = c
	v.progress(Progress{Phase: "scan", Checkpoint: c})
	if err := v.scan(ctx); err != nil {
		// What the scan could not decide stays counted, as unsettled.
		v.settle(v.pending)
		v.pending = nil
		return fmt.Errorf("verify: scan: %w", err)
	}
	if err := v.recheck(ctx); err != nil {
		return fmt.Errorf("verify: recheck: %w", err)
	}
	return nil
}

func (v *verifier) progress(p Progress) {
	if v.opts.progress != nil {
		p.Compared = v.compared
		if p.Checkpoint == 0 {
			p.Checkpoint = v.checkpoint
		}
		v.opts.progress(p)
	}
}

// pendingID is a record to read again and its position in the scan (the
// number of ids before it), which tells how far apart two of them are.
type pendingID struct {
	id  []byte
	pos int64
}

// record counts the verdict on the record p; an undecided one is kept for
// a recheck, or counted as unsettled when final or when there are too many.
func (v *verifier) record(p pendingID, verd verdict, final bool) {
	id := p.id
	switch verd {
	case same:
		v.matched++
	case missing:
		v.nMissing++
		v.missing.add(id)
	case extra:
		v.nExtra++
		v.extra.add(id)
	case differing:
		v.nDiffering++
		v.differing.add(id)
	case undecided:
		if !final && len(v.pending) < v.opts.maxRechecks {
			v.pending = append(v.pending, pendingID{slices.Clone(id), p.pos})
			return
		}
		v.nUnset++
		v.unsettled.add(id)
	}
}

// fence waits until both targets have reached the larger of their
// checkpoints and returns it.
func (v *verifier) fence(ctx context.Context) (uint64, error) {
	co, err := v.old.Checkpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("old target: %w", err)
	}
	cn, err := v.new.Checkpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("new target: %w", err)
	}
	c := max(co, cn)
	if err := v.waitFor(ctx, v.old, "old", c); err != nil {
		return 0, err
	}
	if err := v.waitFor(ctx, v.new, "new", c); err != nil {
		return 0, err
	}
	return c, nil
}

// Polling intervals of waitFor: short first, since a live projector
// usually catches up within a batch or two.
const (
	pollFirst = 5 * time.Millisecond
	pollMax   = 50 * time.Millisecond
)

// waitFor polls src until its checkpoint is at least c, for at most the
// fence timeout.
func (v *verifier) waitFor(ctx context.Context, src Source, name string, c uint64) error {
	deadline := time.Now().Add(v.opts.fenceTimeout)
	wait := pollFirst
	for {
		cp, err := src.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("%s target: %w", name, err)
		}
		if cp >= c {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %s target at checkpoint %d after %v, waiting for %d",
				ErrFenceTimeout, name, cp, v.opts.fenceTimeout, c)
		}
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, pollMax)
	}
}
