package kit

import (
	"errors"
	"fmt"
)

// Errors are one backend's own errors, in which it reports what kit found:
// each backend keeps its sentinels (errors.Is identity) and kit keeps the
// texts alike, "<sentinel>: <detail>".
type Errors struct {
	// InvalidRequest and InvalidPageToken are the sentinels of a
	// *RequestError.
	InvalidRequest, InvalidPageToken error
	// InvalidBatch is the sentinel of a Fault of the batch.
	InvalidBatch error
	// Change returns the backend's error for a Fault of one change: its
	// InvalidChangeError, which embeds the ChangeError it is given.
	Change func(ChangeError) error
}

// ChangeError reports which change of a batch is invalid and why. Each
// backend's InvalidChangeError embeds it and adds an Unwrap that returns the
// backend's ErrInvalidChange (whose text is "invalid change").
type ChangeError struct {
	// Index is the position of the change in the batch.
	Index int
	// Seq is the change's stream sequence (0 for a nil change).
	Seq uint64
	// Reason says what is wrong, for the dead-letter record.
	Reason string
}

func (e *ChangeError) Error() string {
	return fmt.Sprintf("invalid change: change %d (seq %d): %s", e.Index, e.Seq, e.Reason)
}

// Permanent reports true: the change itself is at fault, so retrying cannot
// succeed. Projectors dead-letter a change whose error says so.
func (e *ChangeError) Permanent() bool { return true }

// InvalidArgument returns a new sentinel error with text msg that blames the
// request, so that a gateway answers INVALID_ARGUMENT rather than
// UNAVAILABLE: it implements interface{ InvalidArgument() bool }, reporting
// true. Each call returns a distinct sentinel for errors.Is.
func InvalidArgument(msg string) error { return &invalidArgumentError{msg} }

type invalidArgumentError struct{ msg string }

func (e *invalidArgumentError) Error() string { return e.msg }

// InvalidArgument reports true.
func (e *invalidArgumentError) InvalidArgument() bool { return true }

// Request returns err, a *RequestError, wrapped in InvalidPageToken or
// InvalidRequest; any other error (and nil) as it is.
func (e Errors) Request(err error) error {
	var re *RequestError
	switch {
	case !errors.As(err, &re):
		return err
	case re.Token:
		return fmt.Errorf("%w: %s", e.InvalidPageToken, re.Detail)
	}
	return fmt.Errorf("%w: %s", e.InvalidRequest, re.Detail)
}

// Batch returns the error of f: Change's for a change, InvalidBatch
// (wrapped) for the batch; nil for nil.
func (e Errors) Batch(f *Fault) error {
	switch {
	case f == nil:
		return nil
	case f.Change:
		return e.Change(ChangeError{Index: f.Index, Seq: f.Seq, Reason: f.Reason})
	}
	return fmt.Errorf("%w: %s", e.InvalidBatch, f.Reason)
}
