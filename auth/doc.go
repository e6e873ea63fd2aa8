// Package auth owns who a caller is and what it may do: principals and how
// they reach the gateway unforgeably (the Nats-Request-Info header the NATS
// server stamps on requests that cross from the application account into
// Prism's), per-namespace policies, the NATS subject permissions derived
// from them, the auth callout service that authenticates every connection
// (OIDC bearer JWTs, TLS client certificates, nkeys and credentials files)
// and the server configuration of accounts, exports and imports that makes
// it all hold. See docs/security.md and ADR 015.
//
// Sub-packages: authn (the authenticators the callout chains), audit (the
// audit stream, its records, writer and reader).
package auth
