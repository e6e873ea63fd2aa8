package subjects

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Accounts of a secured deployment (docs/security.md). Prism's own
// processes, its streams and its buckets live in PrismAccount;
// applications connect into AppAccount, which imports Prism's request
// services with share: true so that the server stamps the caller's
// identity on every request (the Nats-Request-Info header).
const (
	PrismAccount = "PRISM"
	AppAccount   = "APP"
)

// HeaderRequestInfo is the header the NATS server sets on a request that
// crosses a service import with share: true: JSON of the caller's client
// info (account, user, ...). The server replaces any value a client set.
const HeaderRequestInfo = "Nats-Request-Info"

// AuthCallout is the subject the NATS server sends its authorization
// requests to (nats-server's $SYS.REQ.USER.AUTH).
const AuthCallout = "$SYS.REQ.USER.AUTH"

var inboxEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// InboxPrefix is the reply-subject prefix the principal named principal
// must connect with in a secured deployment (nats.go CustomInboxPrefix,
// the nats CLI's --inbox-prefix): its permissions let it subscribe only
// under this prefix, so that no principal can read the replies another
// one receives in the shared application account. It is derived from the
// name alone, so a client can compute it before it connects.
func InboxPrefix(principal string) string {
	sum := sha256.Sum256([]byte(principal))
	return "_INBOX." + strings.ToLower(inboxEncoding.EncodeToString(sum[:10]))
}
