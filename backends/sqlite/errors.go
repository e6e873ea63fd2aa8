package sqlite

import (
	"errors"
	"fmt"

	"github.com/prism-data/prism/backends/internal/kit"
)

var (
	// ErrInvalidChange is returned (wrapped in an *InvalidChangeError) by
	// ApplyKeyValue and ApplyTimeSeries for a change that can never be
	// applied: a nil change or event, a KeyValue event that is neither a put
	// nor a delete, a nil item, an invalid expire_time, a TimeSeries append
	// without a series id or with an event lacking a time or an id. Retrying
	// does not help; the caller dead-letters the change and applies the rest
	// of the batch without it.
	ErrInvalidChange = errors.New("invalid change")

	// ErrInvalidBatch is returned by ApplyKeyValue and ApplyTimeSeries when
	// the batch itself is
	// malformed: sequences that are zero, not strictly increasing, greater
	// than through, or beyond the int64 range SQLite stores. It is a bug in
	// the caller, not in an event, so the changes must not be dead-lettered.
	ErrInvalidBatch = errors.New("invalid batch")

	// ErrInvalidPageToken is returned by the reads (GetItems, ScanIDs,
	// ReadRange, Search) for a page_token that is not one they produced. It
	// blames the caller: InvalidArgument reports true.
	ErrInvalidPageToken error = invalidArgument("invalid page token")

	// ErrInvalidRequest is returned by the reads for a request they cannot
	// serve: nil, keys and range both set, an empty series id, an invalid
	// time. It blames the caller: InvalidArgument reports true.
	ErrInvalidRequest error = invalidArgument("invalid request")

	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("sqlite store closed")
)

// invalidArgument is an error that blames the request, so that a gateway
// answers INVALID_ARGUMENT rather than UNAVAILABLE. Each value is a distinct
// sentinel for errors.Is.
type invalidArgument string

func (e invalidArgument) Error() string { return string(e) }

// InvalidArgument reports true.
func (e invalidArgument) InvalidArgument() bool { return true }

// InvalidChangeError reports which change of a batch is invalid and why. It
// matches ErrInvalidChange with errors.Is.
type InvalidChangeError struct {
	// Index is the position of the change in the batch.
	Index int
	// Seq is the change's stream sequence (0 for a nil change).
	Seq uint64
	// Reason says what is wrong, for the dead-letter record.
	Reason string
}

func (e *InvalidChangeError) Error() string {
	return fmt.Sprintf("%v: change %d (seq %d): %s", ErrInvalidChange, e.Index, e.Seq, e.Reason)
}

// Unwrap returns ErrInvalidChange.
func (e *InvalidChangeError) Unwrap() error { return ErrInvalidChange }

// Permanent reports true: the change itself is at fault, so retrying cannot
// succeed. Projectors dead-letter a change whose error says so.
func (e *InvalidChangeError) Permanent() bool { return true }

// kitErrors reports what kit finds wrong in this package's errors.
var kitErrors = kit.Errors{
	InvalidRequest:   ErrInvalidRequest,
	InvalidPageToken: ErrInvalidPageToken,
	InvalidBatch:     ErrInvalidBatch,
	Change: func(index int, seq uint64, reason string) error {
		return &InvalidChangeError{Index: index, Seq: seq, Reason: reason}
	},
}
