package status

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// JetStream error codes Prism reacts to.
const (
	// JSErrWrongLastSequence is JetStream refusing a publish whose
	// Nats-Expected-Last-Subject-Sequence (or -Sequence) did not hold; its
	// description ends in the current sequence.
	JSErrWrongLastSequence         jetstream.ErrorCode = 10071
	jsErrWrongLastSequenceConstant jetstream.ErrorCode = 10164
	jsErrMessageExceedsMaximum     jetstream.ErrorCode = 10054
)

// jsErrorCode returns the JetStream API error code of err, or 0.
func jsErrorCode(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}

// IsWrongLastSequence reports whether err is JetStream refusing a write
// because an expected sequence header did not hold.
func IsWrongLastSequence(err error) bool {
	c := jsErrorCode(err)
	return c == JSErrWrongLastSequence || c == jsErrWrongLastSequenceConstant
}

// CurrentSequence extracts N from JetStream's "wrong last sequence: N"; ok
// is false when err is not that error.
func CurrentSequence(err error) (uint64, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != JSErrWrongLastSequence {
		return 0, false
	}
	_, after, ok := strings.Cut(apiErr.Description, ":")
	if !ok {
		return 0, false
	}
	n, perr := strconv.ParseUint(strings.TrimSpace(after), 10, 64)
	return n, perr == nil
}

// FromJetStream maps an error from a JetStream call in namespace ns to the
// client's error: UNAVAILABLE for what a retry may cure (timeouts, no
// responders, a closed connection, a server error), INVALID_ARGUMENT for an
// event larger than the stream accepts, INTERNAL otherwise. what says what
// was being done, e.g. "storing the write".
func FromJetStream(err error, ns, what string) *Error {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("JetStream did not answer in time while %s in namespace %s; a write may or may not have been stored: retry with the same idempotency token", what, ns), Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: prismv1.Code_UNAVAILABLE, Message: "the gateway is shutting down; retry the request", Err: err}
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return &Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("no JetStream stream answered while %s in namespace %s; check that stream %s exists", what, ns, subjects.Stream(ns)), Err: err}
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrConnectionReconnecting):
		return &Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("the gateway's NATS connection is down while %s in namespace %s; retry with backoff", what, ns), Err: err}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		if apiErr.ErrorCode == jsErrMessageExceedsMaximum {
			return &Error{Code: prismv1.Code_INVALID_ARGUMENT, Message: fmt.Sprintf("the event is larger than stream %s accepts; make the request smaller", subjects.Stream(ns)), Err: err}
		}
		if apiErr.Code >= 500 || apiErr.Code == 429 || apiErr.Code == 503 {
			return &Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("JetStream refused %s in namespace %s (%s); retry with backoff", what, ns, apiErr.Description), Err: err}
		}
		return &Error{Code: prismv1.Code_INTERNAL, Message: fmt.Sprintf("JetStream refused %s in namespace %s: %s (error %d)", what, ns, apiErr.Description, apiErr.ErrorCode), Err: err}
	}
	return &Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("JetStream failed while %s in namespace %s; retry with backoff", what, ns), Err: err}
}
