package auth

import "errors"

// Sentinels for errors.Is. Errors that reach a client are *status.Error
// values (PERMISSION_DENIED) that wrap one of these, so that both
// errors.Is(err, ErrUnauthenticated) and errors.Is(err,
// status.ErrPermissionDenied) hold.
var (
	// ErrUnauthenticated: a request carries no identity the gateway
	// trusts (FromRequestInfo).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrInvalidPrincipal: a principal breaks the rules of
	// Principal.Validate, or an encoded one cannot be decoded.
	ErrInvalidPrincipal = errors.New("invalid principal")
	// ErrInvalidPolicy: a policy breaks the rules of Policy.Validate.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrInvalidAuthRequest: a message on the auth callout subject is not
	// an authorization request signed by a NATS server for this issuer.
	ErrInvalidAuthRequest = errors.New("invalid authorization request")
	// ErrInvalidServerConfig: a ServerConfig breaks the rules of
	// ServerConfig.Validate.
	ErrInvalidServerConfig = errors.New("invalid server configuration")
)
