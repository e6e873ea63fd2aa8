package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Error is an error reply from Prism. Compare it with the sentinels below
// using errors.Is, or read Code directly.
type Error struct {
	// Op is the operation, e.g. "put demo".
	Op string
	// Code is the stable error code.
	Code prismv1.Code
	// Message is Prism's explanation, meant for people.
	Message string
	// Seq is set when the write was stored at this stream sequence before
	// the error happened (e.g. a strong write whose projection timed out).
	Seq uint64
	// RetryAfter, for RESOURCE_EXHAUSTED, is how long Prism asked the
	// caller to wait before retrying (the client already retried
	// WithShedRetries times).
	RetryAfter time.Duration

	cause error // the client-side error behind it, if any; see Unwrap
}

func (e *Error) Error() string {
	return fmt.Sprintf("prism %s: %s: %s", e.Op, e.Code, e.Message)
}

// Unwrap returns the error the client met that made e, such as
// nats.ErrConnectionClosed, or nil for an error reply from Prism.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, client.ErrNotFound) works.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument     = &Error{Code: prismv1.Code_INVALID_ARGUMENT}
	ErrNotFound            = &Error{Code: prismv1.Code_NOT_FOUND}
	ErrNamespaceNotFound   = &Error{Code: prismv1.Code_NAMESPACE_NOT_FOUND}
	ErrConflict            = &Error{Code: prismv1.Code_CONFLICT}
	ErrNotConsistentYet    = &Error{Code: prismv1.Code_NOT_CONSISTENT_YET}
	ErrUnavailable         = &Error{Code: prismv1.Code_UNAVAILABLE}
	ErrIdempotencyMismatch = &Error{Code: prismv1.Code_IDEMPOTENCY_MISMATCH}
	ErrUnimplemented       = &Error{Code: prismv1.Code_UNIMPLEMENTED}
	ErrInternal            = &Error{Code: prismv1.Code_INTERNAL}
	ErrFailedPrecondition  = &Error{Code: prismv1.Code_FAILED_PRECONDITION}
	ErrPermissionDenied    = &Error{Code: prismv1.Code_PERMISSION_DENIED}
	ErrDeadlineExceeded    = &Error{Code: prismv1.Code_DEADLINE_EXCEEDED}
	ErrResourceExhausted   = &Error{Code: prismv1.Code_RESOURCE_EXHAUSTED}
)

// retryable reports whether a write may be retried with the same
// idempotency token.
func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDeadlineExceeded)
}

// misuse is the error of a call the client refuses before sending it.
func misuse(op, format string, args ...any) *Error {
	return &Error{Op: op, Code: prismv1.Code_INVALID_ARGUMENT, Message: fmt.Sprintf(format, args...)}
}

// unavailable is the error of a call that NATS could not carry: what
// happened, for people, and the NATS error as the cause.
func unavailable(op, what string, cause error) *Error {
	return &Error{Op: op, Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("%s (%v); reconnect and retry", what, cause), cause: cause}
}

// connectionDown says what a NATS error tells of the connection when it
// cannot carry requests now, or "" when err is about something else.
func connectionDown(err error) string {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed):
		return "the NATS connection is closed"
	case errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrDrainTimeout):
		return "the NATS connection is draining"
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		return "the NATS connection is reconnecting and its outbound buffer is full"
	case errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrStaleConnection), errors.Is(err, nats.ErrNoServers):
		return "the NATS connection is down"
	}
	return ""
}

// refused is the PERMISSION_DENIED of a request to subject that the NATS
// server did not let this connection publish, or nil. Such a request gets
// no reply: the server drops it and reports a permissions violation to
// the connection, which nats.go keeps as its last error. Server-side
// permissions are fixed for a connection's life, so a violation naming
// subject explains this request's silence too.
func (c *Client) refused(op, subject string) *Error {
	last := c.nc.LastError()
	if !errors.Is(last, nats.ErrPermissionViolation) || !strings.Contains(last.Error(), strconv.Quote(subject)) {
		return nil
	}
	return &Error{Op: op, Code: prismv1.Code_PERMISSION_DENIED, Message: "the NATS server refused to let this connection publish to " + subject + ": its principal lacks the permission for it on the namespace (docs/security.md, Policies)", cause: last}
}
