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
	// Change returns the backend's error for a Fault of one change.
	Change func(index int, seq uint64, reason string) error
}

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
		return e.Change(f.Index, f.Seq, f.Reason)
	}
	return fmt.Errorf("%w: %s", e.InvalidBatch, f.Reason)
}
