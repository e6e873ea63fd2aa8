package neptune

import (
	"errors"
	"fmt"
	"slices"

	"github.com/prism-data/prism/backends/internal/kit"
)

var (
	// ErrInvalidChange is returned (wrapped in an *InvalidChangeError) by
	// ApplyGraph for a change that can never be applied: a nil change or
	// an event subjects.CheckGraphEvent refuses. The projector
	// dead-letters it.
	ErrInvalidChange = errors.New("invalid change")

	// ErrInvalidBatch is returned by ApplyGraph for a malformed batch:
	// sequences that are 0, not strictly increasing or above through. It
	// is the caller's bug, not permanent.
	ErrInvalidBatch = errors.New("invalid batch")

	// ErrInvalidPageToken is returned by Neighbours for a page token it
	// did not make. InvalidArgument reports true.
	ErrInvalidPageToken = kit.InvalidArgument("invalid page token")

	// ErrInvalidRequest is returned by the reads for a request they cannot
	// serve (no id, depth 0, a traversal past max_results).
	// InvalidArgument reports true.
	ErrInvalidRequest = kit.InvalidArgument("invalid request")

	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("neptune store closed")

	// ErrUnavailable is matched (errors.Is) by every error of Neptune or
	// of the way to it that a retry later may cure: throttling,
	// concurrent modification, 5xx, network errors, refused credentials,
	// a query Neptune cannot parse. The gateway answers it UNAVAILABLE;
	// the projector retries the batch.
	ErrUnavailable = errors.New("neptune unavailable")
)

// InvalidChangeError reports which change of a batch is invalid and why.
// It matches ErrInvalidChange and is permanent.
type InvalidChangeError struct{ kit.ChangeError }

// Unwrap returns ErrInvalidChange.
func (e *InvalidChangeError) Unwrap() error { return ErrInvalidChange }

var kitErrors = kit.Errors{
	InvalidRequest:   ErrInvalidRequest,
	InvalidPageToken: ErrInvalidPageToken,
	InvalidBatch:     ErrInvalidBatch,
	Change:           func(e kit.ChangeError) error { return &InvalidChangeError{e} },
}

// QueryError is an error answer of Neptune to one openCypher request: its
// HTTP status, Neptune's error code ("ThrottlingException",
// "MalformedQueryException", ...), its detailed message and request id.
type QueryError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
	// write is true for the request of a batch: a refusal of its data
	// then blames the changes.
	write bool
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("neptune answered %d %s: %s (request %s)", e.Status, e.Code, e.Message, e.RequestID)
}

// retryCodes are the error codes Neptune documents as worth retrying.
var retryCodes = []string{
	"ThrottlingException", "ConcurrentModificationException", "InternalFailureException",
	"MemoryLimitExceededException", "TimeLimitExceededException", "QueryLimitExceededException",
	"ReadOnlyViolationException", // a write that reached a reader during a failover
}

// dataCodes are the refusals of a write that blame what it writes, not the
// query: the projector isolates and dead-letters the change at fault.
// BadRequestException is not one: Neptune gives it for requests wrong in
// any way, and a bug of the store's would then dead-letter every change
// instead of showing as lag.
var dataCodes = []string{"InvalidParameterException", "ConstraintViolationException", "QueryTooLargeException"}

// retryable reports whether the same request may succeed later.
func (e *QueryError) retryable() bool {
	return e.Status == 429 || e.Status >= 500 || slices.Contains(retryCodes, e.Code)
}

// Permanent reports whether the batch's data is to blame: a write refused
// for its content (bad parameters, a constraint, too large). A query
// Neptune cannot parse is this package's fault and not permanent.
func (e *QueryError) Permanent() bool {
	return e.write && !e.retryable() && (slices.Contains(dataCodes, e.Code) || e.Status == 413)
}

// Is makes every non-permanent QueryError match ErrUnavailable.
func (e *QueryError) Is(target error) bool { return target == ErrUnavailable && !e.Permanent() }
