package natskv

import (
	"errors"

	"github.com/prism-data/prism/backends/internal/kit"
)

var (
	// ErrInvalidChange is returned (wrapped in an *InvalidChangeError) by
	// ApplyKeyValue for a change that can never be applied: a nil change or
	// event, an event that is neither a put nor a delete, a nil item or an
	// invalid expire_time. Retrying does not help; the caller dead-letters
	// the change and applies the rest of the batch without it.
	ErrInvalidChange = errors.New("invalid change")

	// ErrInvalidBatch is returned by ApplyKeyValue when the batch itself is
	// malformed: sequences that are zero, not strictly increasing or greater
	// than through, or through above math.MaxInt64. It is a bug in the caller, not in an event, so the
	// changes must not be dead-lettered.
	ErrInvalidBatch = errors.New("invalid key-value batch")

	// ErrInvalidPageToken is returned by GetItems and ScanIDs for a
	// page_token they did not produce. It blames the caller:
	// InvalidArgument reports true.
	ErrInvalidPageToken = kit.InvalidArgument("invalid page token")

	// ErrInvalidRequest is returned by GetItems and ScanIDs for a request
	// they cannot serve: nil, or keys and range both set. It blames the
	// caller: InvalidArgument reports true.
	ErrInvalidRequest = kit.InvalidArgument("invalid request")

	// ErrConflict is returned by ApplyKeyValue and SweepExpired when another
	// writer committed to the bucket between this one reading the
	// checkpoint and committing (two projectors, or a replay racing the
	// live one). Nothing of the refused batch is stored. It is transient:
	// retrying re-reads the checkpoint and skips what the other writer
	// applied. Reads return it only when writers kept changing the record
	// under them for every retry.
	ErrConflict = errors.New("nats kv store: concurrent writer moved the checkpoint")

	// ErrCorrupt is returned when an entry of the bucket cannot be decoded:
	// something other than this package wrote to it.
	ErrCorrupt = errors.New("nats kv store: corrupt entry")

	// ErrUnsupportedServer is returned by Open when the NATS server lacks
	// what the store needs: atomic batch publish (nats-server 2.12 or
	// later) and batched direct gets (2.11 or later).
	ErrUnsupportedServer = errors.New("nats server does not support atomic batch publish (needs nats-server 2.12 or later)")

	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("nats kv store closed")
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
