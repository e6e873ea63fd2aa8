package replay

import (
	"fmt"
	"time"
)

// Defaults of Verify's options.
const (
	DefaultFenceTimeout  = 30 * time.Second
	DefaultRangeSize     = 1000
	DefaultPageSize      = 1000
	DefaultSampleIDs     = 10
	DefaultRecheckRounds = 3
	DefaultMaxRechecks   = 100_000
	DefaultClockSkew     = time.Second
)

type verifyOptions struct {
	fenceTimeout  time.Duration
	rangeSize     int
	pageSize      int
	sampleIDs     int
	recheckRounds int
	maxRechecks   int
	clockSkew     time.Duration
	progress      func(Progress)
}

func defaultVerifyOptions() verifyOptions {
	return verifyOptions{
		fenceTimeout:  DefaultFenceTimeout,
		rangeSize:     DefaultRangeSize,
		pageSize:      DefaultPageSize,
		sampleIDs:     DefaultSampleIDs,
		recheckRounds: DefaultRecheckRounds,
		maxRechecks:   DefaultMaxRechecks,
		clockSkew:     DefaultClockSkew,
	}
}

// VerifyOption configures Verify. Each option checks its argument; Verify
// fails with a descriptive error for an invalid one.
type VerifyOption func(*verifyOptions) error

// WithFenceTimeout bounds each wait for a target to reach a checkpoint the
// other one has reached (the fence before the scan and before each
// recheck round). Default DefaultFenceTimeout; d must be positive.
func WithFenceTimeout(d time.Duration) VerifyOption {
	return func(o *verifyOptions) error {
		if d <= 0 {
			return fmt.Errorf("WithFenceTimeout: %v, need a positive duration", d)
		}
		o.fenceTimeout = d
		return nil
	}
}

// WithRangeSize sets how many records (distinct ids of both targets) one
// checksum covers. Smaller ranges narrow differences down with less work,
// larger ones hash more per comparison. Default DefaultRangeSize; n must be
// at least 1.
func WithRangeSize(n int) VerifyOption {
	return func(o *verifyOptions) error {
		if n < 1 {
			return fmt.Errorf("WithRangeSize: %d, need at least 1", n)
		}
		o.rangeSize = n
		return nil
	}
}

// WithPageSize sets how many records one ExportRecords call reads. Memory
// grows with it: about two pages of records per target are held at a time.
// Default DefaultPageSize; n must be at least 1.
func WithPageSize(n int) VerifyOption {
	return func(o *verifyOptions) error {
		if n < 1 {
			return fmt.Errorf("WithPageSize: %d, need at least 1", n)
		}
		o.pageSize = n
		return nil
	}
}

// WithSampleIDs sets how many ids of each kind of difference the Report
// lists (the smallest ones). Default DefaultSampleIDs; n may be 0.
func WithSampleIDs(n int) VerifyOption {
	return func(o *verifyOptions) error {
		if n < 0 {
			return fmt.Errorf("WithSampleIDs: %d, need at least 0", n)
		}
		o.sampleIDs = n
		return nil
	}
}

// WithRecheckRounds sets how many times records whose difference may come
// from a write that landed during the scan are read again, each time after
// a new fence. Those still undecided after the last round are reported as
// unsettled. Default DefaultRecheckRounds; n may be 0.
func WithRecheckRounds(n int) VerifyOption {
	return func(o *verifyOptions) error {
		if n < 0 {
			return fmt.Errorf("WithRecheckRounds: %d, need at least 0", n)
		}
		o.recheckRounds = n
		return nil
	}
}

// WithMaxRechecks bounds how many records are kept for rechecking (their
// ids are held in memory); records beyond it are reported as unsettled
// without a recheck. Default DefaultMaxRechecks; n may be 0.
func WithMaxRechecks(n int) VerifyOption {
	return func(o *verifyOptions) error {
		if n < 0 {
			return fmt.Errorf("WithMaxRechecks: %d, need at least 0", n)
		}
		o.maxRechecks = n
		return nil
	}
}

// WithClockSkew sets how far the clock of a process sweeping expired items
// may be ahead of this one. A sweep removes items that are still live at
// Verify's clock if its clock is ahead, so a difference on a record with an
// item expiring within the skew of a read is rechecked after that item
// expired rather than reported. Default DefaultClockSkew; d must not be
// negative.
func WithClockSkew(d time.Duration) VerifyOption {
	return func(o *verifyOptions) error {
		if d < 0 {
			return fmt.Errorf("WithClockSkew: %v, need at least 0", d)
		}
		o.clockSkew = d
		return nil
	}
}

// WithProgress makes Verify call fn, from the goroutine that called
// Verify, after the fence, after each range and after each recheck round.
// fn must return quickly; fn must not be nil.
func WithProgress(fn func(Progress)) VerifyOption {
	return func(o *verifyOptions) error {
		if fn == nil {
			return fmt.Errorf("WithProgress: nil function")
		}
		o.progress = fn
		return nil
	}
}

// Progress is how far a Verify has got.
type Progress struct {
	// Phase is "fence", "scan" or "recheck".
	Phase string
	// Checkpoint is the fence of the scan (0 until it is reached).
	Checkpoint uint64
	// Compared is the number of records compared so far.
	Compared int64
	// Pending is the number of records waiting for a recheck.
	Pending int
	// Round is the recheck round (1-based) in phase "recheck".
	Round int
}
