package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/jwt/v2"
)

// Ways a principal was authenticated (Principal.Via).
const (
	ViaOIDC    = "oidc"    // a bearer JWT from an OIDC issuer
	ViaTLS     = "tls"     // a verified TLS client certificate
	ViaNKey    = "nkey"    // an nkey listed in the auth configuration
	ViaCreds   = "creds"   // a user JWT signed by Prism's user issuer (a .creds file)
	ViaNATS    = "nats"    // a user configured on an external NATS server in the application account
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
// for concurrent use. The error's text reaches the server's log, so it
// must never carry the credential (a token, a password, a key).
type Authenticator interface {
	Authenticate(ctx context.Context, req *jwt.AuthorizationRequestClaims) (Principal, time.Time, error)
}

// Limits on a principal, so that the identity a connection carries on
// every request (the Nats-Request-Info header) stays small.
const (
	// MaxNameLen is the longest principal or group name, in bytes.
	MaxNameLen = 1024
	// MaxGroups is the most groups a principal may have.
	MaxGroups = 256
)

// vias are the known values of Principal.Via.
var vias = map[string]bool{
	ViaOIDC: true, ViaTLS: true, ViaNKey: true, ViaCreds: true,
	ViaNATS: true, ViaService: true, ViaNone: true,
}

// Validate reports whether p is a principal Prism can carry and match: a
// name and each group of 1 to MaxNameLen bytes of UTF-8 text without
// control characters nor surrounding spaces, the name not "*" (the policy
// wildcard), at most MaxGroups groups, and Via one of the Via constants.
// The error wraps ErrInvalidPrincipal and names the offending field
// (never its value: it may come from an untrusted token).
func (p Principal) Validate() error {
	if err := checkText(p.Name); err != nil {
		return fmt.Errorf("%w: name %v", ErrInvalidPrincipal, err)
	}
	if p.Name == Everyone {
		return fmt.Errorf("%w: name %q is the policy wildcard", ErrInvalidPrincipal, Everyone)
	}
	if len(p.Groups) > MaxGroups {
		return fmt.Errorf("%w: %d groups, at most %d are allowed", ErrInvalidPrincipal, len(p.Groups), MaxGroups)
	}
	for i, g := range p.Groups {
		if err := checkText(g); err != nil {
			return fmt.Errorf("%w: group %d %v", ErrInvalidPrincipal, i, err)
		}
	}
	if !vias[p.Via] {
		return fmt.Errorf("%w: unknown authentication method (via); want one of oidc, tls, nkey, creds, nats, service, none", ErrInvalidPrincipal)
	}
	return nil
}

// authenticated reports whether p was authenticated: it has a name and
// did not come from development mode.
func (p Principal) authenticated() bool {
	return p.Name != "" && p.Via != "" && p.Via != ViaNone
}

// checkText checks a principal name, a group name or a policy entry's
// name: 1 to MaxNameLen bytes of UTF-8 without control characters nor
// leading or trailing spaces. Its error says what is wrong, not the text.
func checkText(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("is %d bytes long, at most %d are allowed", len(s), MaxNameLen)
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errors.New("contains a control character")
	case strings.TrimSpace(s) != s:
		return errors.New("has leading or trailing spaces")
	}
	return nil
}
