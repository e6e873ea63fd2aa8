package auth

import (
	"context"
	"time"

	"github.com/nats-io/jwt/v2"
)

// Ways a principal was authenticated (Principal.Via).
const (
	ViaOIDC    = "oidc"    // a bearer JWT from an OIDC issuer
	ViaTLS     = "tls"     // a verified TLS client certificate
	ViaNKey    = "nkey"    // an nkey listed in the auth configuration
	ViaCreds   = "creds"   // a user JWT signed by Prism's user issuer (a .creds file)
	ViaService = "service" // a Prism process in the Prism account
	ViaNone    = "none"    // development mode: authentication is off
)

// Principal is who a request comes from.
type Principal struct {
	// Name identifies the principal in policies and audit records: the
	// OIDC claim the configuration names (sub by default), the first
	// email or URI SAN of a certificate else its CN, the configured name
	// of an nkey, the name of a user JWT.
	Name string `json:"n"`
	// Groups are the principal's groups: the OIDC groups claim, a user
	// JWT's tags, the configured groups of an nkey or certificate name.
	Groups []string `json:"g,omitempty"`
	// Via is how it was authenticated: one of the Via constants.
	Via string `json:"v"`
}

// Anonymous is the principal of every request when authentication is off
// (development mode on loopback).
var Anonymous = Principal{Name: "anonymous", Via: ViaNone}

// Authenticator establishes who is connecting from the server's
// authorization request (connect options, TLS state, nonce). It returns the
// principal and when its credential expires (zero for never), or an error
// saying why the connection is refused; the callout sends that error to the
// server, which logs it and closes the connection. Implementations are safe
// for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, req *jwt.AuthorizationRequestClaims) (Principal, time.Time, error)
}
