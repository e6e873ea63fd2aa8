// Package auth owns who a caller is and what it may do: principals and how
// they reach the gateway unforgeably (the Nats-Request-Info header the NATS
// server stamps on requests that cross from the application account into
// Prism's), per-namespace policies, the NATS subject permissions derived
// from them, the auth callout service that authenticates every connection
// (OIDC bearer JWTs, TLS client certificates, nkeys and credentials files)
// and the server configuration of accounts, exports and imports that makes
// it all hold. See docs/security.md and ADR 015.
//
// The model: a secured NATS server runs three accounts (ServerConfig).
// PRISM holds Prism's processes (nkey users, trusted), JetStream and every
// stream; APP holds every application connection and has no JetStream;
// SYS is the system account. PRISM exports its write, read and admin
// request subjects as services and the change fan-out as a stream; APP
// imports the services with share: true, so the server stamps the caller's
// account and user on each request, replacing whatever the client set.
// Every APP connection is admitted by the auth callout (Callout), which
// asks an Authenticator who is connecting and answers with a user JWT whose
// name is the encoded principal (EncodePrincipal) and whose subject
// permissions come from the policies (UserPermissions). The gateway reads
// the principal back with FromRequestInfo and checks the live policies on
// every request (Policies.Authorize): policies are enforced twice, by the
// server and by the gateway.
//
// Sub-packages: authn (the authenticators the callout chains), audit (the
// audit stream, its records, writer and reader).
package auth
