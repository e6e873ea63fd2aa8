package postgres

import (
	"errors"

	"github.com/prism-data/prism/backends/internal/kit"
)

var (
	// ErrInvalidChange is returned (wrapped in an *InvalidChangeError) by
	// ApplyKeyValue and ApplyTimeSeries for a change that can never be
	// applied: a nil change or event, a KeyValue event that is neither a put
	// nor a delete, a nil item, an invalid expire_time, a TimeSeries append
	// without a series id or with an event lacking a valid time or an id.
	// Retrying does not help; the caller dead-letters the change and applies
	// the rest of the batch without it.
	ErrInvalidChange = errors.New("invalid change")

	// ErrInvalidBatch is returned by ApplyKeyValue and ApplyTimeSeries when
	// the batch itself is malformed: sequences that are zero, not strictly
	// increasing, greater than through, or beyond the int64 range
	// PostgreSQL's bigint stores. It is a bug in the caller, not in an event,
	// so the changes must not be dead-lettered.
	ErrInvalidBatch = errors.New("invalid batch")

	// ErrInvalidPageToken is returned by the reads (GetItems, ScanIDs,
	// ReadRange, Search) for a page_token that is not one they produced. It
	// blames the caller: it implements interface{ InvalidArgument() bool },
	// reporting true.
	ErrInvalidPageToken = kit.InvalidArgument("invalid page token")

	// ErrInvalidRequest is returned by the reads for a request they cannot
	// serve: nil, keys and range both set, an empty series id, an invalid
	// range time, too many tags. It blames the caller: it implements
	// interface{ InvalidArgument() bool }, reporting true.
	ErrInvalidRequest = kit.InvalidArgument("invalid request")

	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("postgres store closed")
)

// InvalidChangeError reports which change of a batch is invalid and why
// (Index, Seq, Reason). It matches ErrInvalidChange with errors.Is, and is
// permanent: Permanent reports true, so projectors dead-letter the change.
type InvalidChangeError struct{ kit.ChangeError }

// Unwrap returns ErrInvalidChange.
func (e *InvalidChangeError) Unwrap() error { return ErrInvalidChange }

// kitErrors reports what kit finds wrong in this package's errors.
var kitErrors = kit.Errors{
	InvalidRequest:   ErrInvalidRequest,
	InvalidPageToken: ErrInvalidPageToken,
	InvalidBatch:     ErrInvalidBatch,
	Change:           func(e kit.ChangeError) error { return &InvalidChangeError{e} },
}
