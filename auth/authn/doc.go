// Package authn holds the authenticators the auth callout chains: it turns
// the NATS server's authorization request for a connecting client (its
// connect options, the nonce the server sent it, its TLS state) into an
// auth.Principal and the time its credential expires, or a refusal.
//
// New builds the chain from the authn section of the operator's auth.yaml
// (Config). It picks the method from what the client presented, in this
// order, and never falls through to another once one is picked:
//
//   - a token: an OAuth2/OIDC bearer JWT, verified against the issuer's
//     JWKS (go-oidc: discovery or a configured JWKS URL, keys cached and
//     refetched when a token names an unknown key id);
//   - a user JWT with a signed nonce (a .creds file): the JWT must be signed
//     by Prism's user issuer, be current and not revoked, and the nonce
//     signature must verify with the JWT's subject key. nats-server passes
//     user JWTs on only in operator mode; without an operator it drops
//     them, and a bare signed nonce is refused with a message saying so;
//   - an nkey with a signed nonce: the nkey must be listed in the
//     configuration and the signature must verify;
//   - a TLS client certificate chain the server verified: Prism verifies it
//     again against its own configured CA and maps it to a name.
//
// Every refusal is a *status.Error with code PERMISSION_DENIED (UNAVAILABLE
// when an issuer's keys could not be fetched) whose message says what is
// missing; it wraps one of the sentinels in errors.go, so callers and tests
// can tell the reasons apart with errors.Is. Refusals never carry the token,
// password, signature or any other secret the client sent.
package authn
