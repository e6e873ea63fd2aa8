package kafka

import (
	"errors"

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
	ErrInvalidRequest = kit.InvalidArgument("invalid request")

	// ErrOffsetOutOfRange is returned by Fetch for an offset past the
	// partition's end or before its first kept record (Kafka's retention
	// deleted it). It blames the caller: InvalidArgument reports true.
	ErrOffsetOutOfRange = kit.InvalidArgument("offset out of range")

	// ErrCorrupt is returned when the checkpoint topic holds a record this
	// package did not write.
	ErrCorrupt = errors.New("kafka store: corrupt checkpoint record")

	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("kafka store closed")
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
	InvalidPageToken: ErrInvalidRequest,
	InvalidBatch:     ErrInvalidBatch,
	Change:           func(e kit.ChangeError) error { return &InvalidChangeError{e} },
}
