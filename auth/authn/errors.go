package authn

import (
	"errors"
	"fmt"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// Reasons a connection is refused. Authenticate returns a *status.Error
// (code PERMISSION_DENIED, or UNAVAILABLE for ErrKeysUnavailable) that wraps
// exactly one of them; test with errors.Is.
var (
	// ErrNoCredentials: the client presented nothing Prism accepts.
	ErrNoCredentials = errors.New("no credentials")
	// ErrUnsupported: the client presented a kind of credential that is not
	// accepted (username/password) or whose method is not configured.
	ErrUnsupported = errors.New("credential kind not accepted")
	// ErrMalformed: the credential could not be parsed.
	ErrMalformed = errors.New("malformed credential")
	// ErrBadSignature: a signature (token, user JWT, nonce, certificate)
	// did not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrExpired: the credential's validity has ended.
	ErrExpired = errors.New("credential expired")
	// ErrNotYetValid: the credential's validity has not begun.
	ErrNotYetValid = errors.New("credential not yet valid")
	// ErrWrongAudience: an OIDC token not meant for Prism's audience.
	ErrWrongAudience = errors.New("wrong audience")
	// ErrWrongIssuer: a token or user JWT from an issuer Prism does not
	// trust.
	ErrWrongIssuer = errors.New("wrong issuer")
	// ErrUnknownKey: an nkey that is not configured.
	ErrUnknownKey = errors.New("unknown key")
	// ErrRevoked: a user JWT whose key is on the revocation list.
	ErrRevoked = errors.New("credential revoked")
	// ErrUntrusted: a certificate that does not chain to the configured CA.
	ErrUntrusted = errors.New("untrusted certificate")
	// ErrNoNonce: a signed nonce was presented but the server sent no
	// nonce, so the signature proves nothing (replayable).
	ErrNoNonce = errors.New("no nonce")
	// ErrBadIdentity: the credential verified but carries no usable name or
	// groups (missing claim, reserved prefix, control characters).
	ErrBadIdentity = errors.New("unusable identity")
	// ErrKeysUnavailable: an OIDC issuer's keys could not be fetched; a
	// retry may succeed.
	ErrKeysUnavailable = errors.New("issuer keys unavailable")
	// ErrInvalidConfig: Config.Validate or New refused the configuration.
	ErrInvalidConfig = errors.New("invalid authentication configuration")
)

// refuse returns the PERMISSION_DENIED error for method via: message is
// the sentence the server logs, reason the sentinel it wraps.
func refuse(via string, reason error, format string, args ...any) *status.Error {
	return &status.Error{
		Op:      "authenticate " + via,
		Code:    prismv1.Code_PERMISSION_DENIED,
		Message: fmt.Sprintf(format, args...),
		Err:     reason,
	}
}

// unavailable is refuse for a failure a retry may cure; cause must not hold
// any secret of the client.
func unavailable(via string, cause error, format string, args ...any) *status.Error {
	return &status.Error{
		Op:      "authenticate " + via,
		Code:    prismv1.Code_UNAVAILABLE,
		Message: fmt.Sprintf(format, args...),
		Err:     fmt.Errorf("%w: %v", ErrKeysUnavailable, cause),
	}
}

// invalidConfig returns the INVALID_ARGUMENT error for a configuration
// problem at field.
func invalidConfig(field, format string, args ...any) *status.Error {
	return &status.Error{
		Code:    prismv1.Code_INVALID_ARGUMENT,
		Message: "auth configuration: " + field + ": " + fmt.Sprintf(format, args...),
		Err:     ErrInvalidConfig,
	}
}
