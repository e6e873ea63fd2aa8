// Package status is Prism's coded error: the Error every reply of the
// gateway and the admin API carries, its stable codes (the sentinels), and
// the classification of JetStream errors into them. It is the one error type
// of both planes, like google.golang.org/grpc/status for gRPC; it imports no
// Prism package but proto and subjects.
package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Error is an error with a stable wire code. Every error reply the gateway
// and the admin API send is built from one: Code becomes the Prism-Error-Code header and the
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
	// RetryAfter, for RESOURCE_EXHAUSTED, is how long the client should
	// wait before retrying; it is sent rounded up to milliseconds.
	RetryAfter time.Duration
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
// errors.Is(err, status.ErrConflict) works for any conflict.
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
	ErrResourceExhausted   = &Error{Code: prismv1.Code_RESOURCE_EXHAUSTED, Message: "resource exhausted"}
)

// Newf returns an *Error of code whose message is format with args.
func Newf(code prismv1.Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an INVALID_ARGUMENT *Error whose message is format with
// args.
func Invalidf(format string, args ...any) *Error {
	return Newf(prismv1.Code_INVALID_ARGUMENT, format, args...)
}

// Convert turns any error into the *Error sent to the client: err itself
// when it is (or wraps) an *Error; else DEADLINE_EXCEEDED or UNAVAILABLE for
// a context error, INTERNAL for anything else.
func Convert(err error) *Error {
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

// Proto is the wire form of e: the body of an error reply.
func (e *Error) Proto() *prismv1.ErrorReply {
	return &prismv1.ErrorReply{Error: &prismv1.Error{Code: e.Code, Message: e.Message, Seq: e.Seq, RetryAfterMs: e.RetryAfterMillis()}}
}

// RetryAfterMillis is RetryAfter in whole milliseconds, rounded up so that
// a positive hint never becomes 0; 0 when RetryAfter is not positive.
func (e *Error) RetryAfterMillis() uint32 {
	if e.RetryAfter <= 0 {
		return 0
	}
	ms := (e.RetryAfter + time.Millisecond - 1) / time.Millisecond
	return uint32(min(ms, 1<<31))
}
