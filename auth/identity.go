package auth

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Size bounds of identity input, which reaches the gateway on every
// request.
const (
	// MaxEncodedPrincipal is the longest EncodePrincipal output
	// DecodePrincipal accepts, in bytes.
	MaxEncodedPrincipal = 16 << 10
	// MaxRequestInfo is the longest Nats-Request-Info header value
	// FromRequestInfo reads, in bytes.
	MaxRequestInfo = 64 << 10
)

// ServicePrincipal is the principal of a request that did not cross from
// the application account: it was sent from inside the PRISM account, by
// one of Prism's own processes.
var ServicePrincipal = Principal{Name: "prism", Via: ViaService}

// redactedUser is what nats-server reports as the user of a token
// connection: no identity.
const redactedUser = "[REDACTED]"

// EncodePrincipal returns the form of p the auth callout puts in the user
// JWT's name, which the server then reports as the user of every request
// (Nats-Request-Info): compact JSON, groups sorted and deduplicated. It
// does not validate p; the callout calls p.Validate first.
func EncodePrincipal(p Principal) string {
	if len(p.Groups) > 0 {
		p.Groups = slices.Compact(slices.Sorted(slices.Values(p.Groups)))
	}
	b, err := json.Marshal(p)
	if err != nil {
		// A struct of strings always marshals.
		panic("auth: encode principal: " + err.Error())
	}
	return string(b)
}

// DecodePrincipal parses the output of EncodePrincipal. It rejects input
// longer than MaxEncodedPrincipal, anything but exactly one JSON object of
// the principal's fields, and a principal that fails Principal.Validate
// (an empty name among others). Errors wrap ErrInvalidPrincipal and never
// quote the input.
func DecodePrincipal(s string) (Principal, error) {
	if len(s) > MaxEncodedPrincipal {
		return Principal{}, fmt.Errorf("%w: encoded principal is %d bytes, at most %d are allowed", ErrInvalidPrincipal, len(s), MaxEncodedPrincipal)
	}
	var p Principal
	if err := decodeStrict(s, &p); err != nil {
		return Principal{}, fmt.Errorf("%w: not an encoded principal: %v", ErrInvalidPrincipal, err)
	}
	if err := p.Validate(); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// decodeStrict decodes exactly one JSON value of s into v, refusing
// unknown fields and trailing data.
func decodeStrict(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}

// requestInfo is the part of nats-server's ClientInfo the gateway reads.
type requestInfo struct {
	Account string `json:"acc"`
	User    string `json:"user"`
}

// FromRequestInfo returns who sent a request, from its headers, by the
// trust rule of a secured deployment (ADR 015):
//
//   - Nats-Request-Info present and its account is subjects.AppAccount:
//     the server stamped it when the request crossed the share: true
//     import into PRISM, replacing anything the client set. Its user is a
//     Prism-encoded principal (a connection the auth callout admitted) or,
//     when not JSON, the plain name of a user configured on an external
//     server (Via "nats"). A principal claiming Via "service" or "none"
//     is refused: no application connection is either.
//   - Nats-Request-Info absent: the request never crossed an import, so it
//     was published inside the PRISM account by one of Prism's processes:
//     ServicePrincipal.
//   - Nats-Request-Info from any other account, more than one such
//     header, a malformed or oversized one, or one without a user: refused.
//
// Errors are PERMISSION_DENIED *status.Error values wrapping
// ErrUnauthenticated; their messages do not quote the header.
func FromRequestInfo(h nats.Header) (Principal, error) {
	vals := h.Values(subjects.HeaderRequestInfo)
	switch len(vals) {
	case 0:
		return ServicePrincipal, nil
	case 1:
	default:
		return Principal{}, unauthenticated("the request carries %d %s headers; the server sets exactly one", len(vals), subjects.HeaderRequestInfo)
	}
	raw := vals[0]
	if len(raw) > MaxRequestInfo {
		return Principal{}, unauthenticated("the %s header is %d bytes, at most %d are read", subjects.HeaderRequestInfo, len(raw), MaxRequestInfo)
	}
	var ri requestInfo
	if err := json.Unmarshal([]byte(raw), &ri); err != nil {
		return Principal{}, unauthenticated("the %s header is not the server's client info JSON", subjects.HeaderRequestInfo)
	}
	if ri.Account != subjects.AppAccount {
		return Principal{}, unauthenticated("the request comes from an account other than %s; only %s callers are admitted", subjects.AppAccount, subjects.AppAccount)
	}
	if ri.User == "" || ri.User == redactedUser {
		return Principal{}, unauthenticated("the request's %s header names no user; the %s account's import of Prism's services needs share: true and its connections a user identity", subjects.HeaderRequestInfo, subjects.AppAccount)
	}
	if strings.HasPrefix(ri.User, "{") {
		p, err := DecodePrincipal(ri.User)
		if err != nil {
			return Principal{}, unauthenticated("the request's user is not a valid Prism principal: %v", err)
		}
		if p.Via == ViaService || p.Via == ViaNone {
			return Principal{}, unauthenticated("an %s connection cannot carry a %q principal", subjects.AppAccount, p.Via)
		}
		return p, nil
	}
	p := Principal{Name: ri.User, Via: ViaNATS}
	if err := p.Validate(); err != nil {
		return Principal{}, unauthenticated("the request's user is not a valid name: %v", err)
	}
	return p, nil
}

// unauthenticated is the PERMISSION_DENIED error of FromRequestInfo.
func unauthenticated(format string, args ...any) error {
	return &status.Error{
		Op:      "identity",
		Code:    status.ErrPermissionDenied.Code,
		Message: "unauthenticated: " + fmt.Sprintf(format, args...),
		Err:     ErrUnauthenticated,
	}
}
