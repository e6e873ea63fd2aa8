package kafka

import (
	"errors"
	"fmt"

	"github.com/prism-data/prism/backends/internal/kit"
)

var (
	// ErrInvalidChange is returned (wrapped in an *InvalidChangeError) by
	// ApplyLog for a change that can never be applied: a nil change or
	// event, an empty key, no CloudEvent id, or a header name that is empty
	// or reserved. Retrying does not help; the projector dead-letters the
	// change and applies the rest of the batch without it.
	ErrInvalidChange = errors.New("invalid change")

	// ErrInvalidBatch is returned by ApplyLog when the batch itself is
	// malformed: sequences that are zero, not strictly increasing or greater
	// than through, or through above math.MaxInt64. It is a bug in the
	// caller, not in an event, so the changes must not be dead-lettered.
	ErrInvalidBatch = errors.New("invalid log batch")

	// ErrInvalidRequest is returned by Fetch for a request it cannot serve:
	// nil, a partition the topic does not have, a key and a partition both
	// set, a negative offset, or an end_offset not above offset. It blames
	// the caller: InvalidArgument reports true.
	ErrInvalidRequest error = invalidArgument("invalid request")

	// ErrOffsetOutOfRange is returned by Fetch for an offset past the
	// partition's end or before its first kept record (Kafka's retention
	// deleted it). It blames the caller: InvalidArgument reports true.
	ErrOffsetOutOfRange error = invalidArgument("offset out of range")

	// ErrCorrupt is returned when the checkpoint topic holds a record this
	// package did not write.
	ErrCorrupt = errors.New("kafka store: corrupt checkpoint record")

	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("kafka store closed")
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
	InvalidPageToken: ErrInvalidRequest,
	InvalidBatch:     ErrInvalidBatch,
	Change: func(index int, seq uint64, reason string) error {
		return &InvalidChangeError{Index: index, Seq: seq, Reason: reason}
	},
}
