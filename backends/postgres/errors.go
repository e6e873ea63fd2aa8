package postgres

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidChange is returned (wrapped in an *InvalidChangeError) by
	// ApplyKeyValue for a change that can never be applied: a nil change or
	// event, an event that is neither a put nor a delete, a nil item, or an
	// invalid expire_time. Retrying does not help; the caller dead-letters the
	// change and applies the rest of the batch without it.
	ErrInvalidChange = errors.New("invalid key-value change")

	// ErrInvalidBatch is returned by ApplyKeyValue when the batch itself is
	// malformed: sequences that are zero, not strictly increasing, greater
	// than through, or beyond the int64 range PostgreSQL's bigint stores. It
	// is a bug in the caller, not in an event, so the changes must not be
	// dead-lettered.
	ErrInvalidBatch = errors.New("invalid key-value batch")

	// ErrInvalidPageToken is returned by GetItems and ScanIDs for a
	// page_token that is not one they produced.
	ErrInvalidPageToken = errors.New("invalid page token")

	// ErrInvalidRequest is returned by GetItems for a request that sets both
	// keys and range, and by GetItems and ScanIDs for a nil request.
	ErrInvalidRequest = errors.New("invalid request")

	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("postgres store closed")
)

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
