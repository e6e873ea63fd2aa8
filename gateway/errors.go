package gateway

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

// Error is an error with a stable wire code. Every error reply the gateway
// sends is built from one: Code becomes the Prism-Error-Code header and the
// code of the prismv1.Error body, Message its message, Seq its seq.
//
// Compare with the sentinels below using errors.Is; it matches on Code.
type Error struct {
	// Op is the operation and namespace, e.g. "write.put demo". It appears in
	// logs, not on the wire.
	Op string
	// Code is the stable class of the error.
	Code prismv1.Code
	// Message is a sentence a person can act on.
	Message string
	// Seq is the stream sequence of a write that was stored before the error
	// happened (a strong write whose projection timed out), else 0.
	Seq uint64
	// Err is the underlying cause, if any. It is logged, never sent.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Code.String() + ": " + e.Message
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, gateway.ErrConflict) works for any conflict.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is, one per wire code.
var (
	ErrInvalidArgument     = &Error{Code: prismv1.Code_INVALID_ARGUMENT, Message: "invalid argument"}
	ErrNotFound            = &Error{Code: prismv1.Code_NOT_FOUND, Message: "not found"}
	ErrNamespaceNotFound   = &Error{Code: prismv1.Code_NAMESPACE_NOT_FOUND, Message: "namespace not found"}
	ErrConflict            = &Error{Code: prismv1.Code_CONFLICT, Message: "conflict"}
	ErrNotConsistentYet    = &Error{Code: prismv1.Code_NOT_CONSISTENT_YET, Message: "not consistent yet"}
	ErrUnavailable         = &Error{Code: prismv1.Code_UNAVAILABLE, Message: "unavailable"}
	ErrIdempotencyMismatch = &Error{Code: prismv1.Code_IDEMPOTENCY_MISMATCH, Message: "idempotency mismatch"}
	ErrUnimplemented       = &Error{Code: prismv1.Code_UNIMPLEMENTED, Message: "unimplemented"}
	ErrInternal            = &Error{Code: prismv1.Code_INTERNAL, Message: "internal error"}
	ErrPermissionDenied    = &Error{Code: prismv1.Code_PERMISSION_DENIED, Message: "permission denied"}
	ErrDeadlineExceeded    = &Error{Code: prismv1.Code_DEADLINE_EXCEEDED, Message: "deadline exceeded"}
	ErrFailedPrecondition  = &Error{Code: prismv1.Code_FAILED_PRECONDITION, Message: "failed precondition"}
)

// ErrGatewayClosed is returned by Start on a gateway that was drained, and by
// Start called twice.
var ErrGatewayClosed = errors.New("gateway: already started or drained")

func newError(code prismv1.Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) *Error {
	return newError(prismv1.Code_INVALID_ARGUMENT, format, args...)
}

// asError turns any error into the *Error sent to the client. Errors that
// are not *Error are internal unless they are context errors.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: prismv1.Code_DEADLINE_EXCEEDED, Message: "the request did not finish in time; a write may or may not have been stored: retry it with the same idempotency token", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: prismv1.Code_UNAVAILABLE, Message: "the gateway is shutting down; retry the request", Err: err}
	}
	return &Error{Code: prismv1.Code_INTERNAL, Message: "internal error; the gateway logs have the details", Err: err}
}

// JetStream error codes the gateway reacts to.
const (
	jsErrWrongLastSequence         jetstream.ErrorCode = 10071
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

// isWrongLastSequence reports whether err is JetStream refusing a write
// because an expected sequence header did not hold.
func isWrongLastSequence(err error) bool {
	c := jsErrorCode(err)
	return c == jsErrWrongLastSequence || c == jsErrWrongLastSequenceConstant
}

// currentSequence extracts N from JetStream's "wrong last sequence: N".
func currentSequence(err error) (uint64, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrWrongLastSequence {
		return 0, false
	}
	_, after, ok := strings.Cut(apiErr.Description, ":")
	if !ok {
		return 0, false
	}
	n, perr := strconv.ParseUint(strings.TrimSpace(after), 10, 64)
	return n, perr == nil
}

// jetStreamError maps an error from a JetStream call to the client's error.
// what says what was being done, e.g. "storing the write".
func jetStreamError(err error, ns, what string) *Error {
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

// toProto is the wire form of e.
func (e *Error) toProto() *prismv1.ErrorReply {
	return &prismv1.ErrorReply{Error: &prismv1.Error{Code: e.Code, Message: e.Message, Seq: e.Seq}}
}
