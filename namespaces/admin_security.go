package namespaces

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
)

// AdminSecurity decides who sent an admin request and whether it may run;
// the gateway's Security satisfies it. Without one (development mode)
// every request is allowed and recorded as auth.Anonymous.
type AdminSecurity interface {
	// Identify returns the principal of a request from its headers.
	Identify(h nats.Header) (auth.Principal, error)
	// Authorize returns nil when p may perform perm on namespace ns,
	// registered or not, and otherwise a PERMISSION_DENIED error naming
	// the missing permission.
	Authorize(p auth.Principal, ns string, perm auth.Permission) error
}

// AdminAccess is one admin request as the audit records it.
type AdminAccess struct {
	Principal auth.Principal
	Namespace string // "" for ns.list
	Op        string // the admin operation, e.g. "ns.apply"
	Code      string // "OK" or the status code name
	Latency   time.Duration
	// IDs are the records the request named, raw (pii.forget): the
	// auditor hashes them.
	IDs [][]byte
}

// AdminAuditor records every admin request; the admin replies only once
// the record is stored.
type AdminAuditor interface {
	AuditAdmin(ctx context.Context, a AdminAccess) error
	// Healthy returns nil while records are being stored, and otherwise
	// the UNAVAILABLE error requests are refused with.
	Healthy() error
}

// visible are the permissions any of which lets a principal see that a
// namespace exists (ns.get, ns.history, ns.list).
var visible = []auth.Permission{auth.Read, auth.Write, auth.Subscribe, auth.Admin}

// adminTarget is the namespace an admin request names, read from the
// fields every request type uses for it.
func adminTarget(body []byte) string {
	var t struct {
		Name      string `json:"name"`
		Namespace struct {
			Name string `json:"name"`
		} `json:"namespace"`
	}
	_ = json.Unmarshal(body, &t) // a malformed body is refused by handle
	if t.Name != "" {
		return t.Name
	}
	return t.Namespace.Name
}

// admit identifies the caller of an admin request of op on body and
// checks it may run it: list is open to everyone (its reply is filtered),
// get and history need any permission on the namespace, everything else
// needs admin of it (a namespace not yet registered: a global admin).
func (a *Admin) admit(op string, h nats.Header, body []byte) (auth.Principal, string, error) {
	if au := a.cfg.Auditor; au != nil {
		if err := au.Healthy(); err != nil {
			return auth.Anonymous, "", err
		}
	}
	sec := a.cfg.Security
	if sec == nil {
		return auth.Anonymous, adminTarget(body), nil
	}
	p, err := sec.Identify(h)
	if err != nil {
		return p, "", err
	}
	if op == AdminList {
		return p, "", nil
	}
	ns := adminTarget(body)
	if op == AdminGet || op == AdminHistory {
		return p, ns, a.mayAny(p, ns, visible)
	}
	return p, ns, sec.Authorize(p, ns, auth.Admin)
}

// mayAny returns nil when p has any of perms on ns, else the refusal of
// the first.
func (a *Admin) mayAny(p auth.Principal, ns string, perms []auth.Permission) error {
	var first error
	for _, perm := range perms {
		err := a.cfg.Security.Authorize(p, ns, perm)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// filterList keeps the namespaces of l that p may see.
func (a *Admin) filterList(p auth.Principal, l AdminListReply) AdminListReply {
	if a.cfg.Security == nil {
		return l
	}
	l.Namespaces = slices.DeleteFunc(l.Namespaces, func(n AdminNamespace) bool {
		return a.mayAny(p, n.Namespace.Name, visible) != nil
	})
	return l
}

// principalKey carries the admitted principal to handle.
type principalKey struct{}

// by is who the registry records as making a change: the authenticated
// principal when there is one, else what the client said (claimed): in
// development mode, and for Prism's own processes and operators' tools in
// the PRISM account, which are trusted to say who runs them.
func by(ctx context.Context, claimed string) string {
	if p, ok := ctx.Value(principalKey{}).(auth.Principal); ok && p.Via != auth.ViaNone && p.Via != auth.ViaService {
		return p.Name
	}
	return claimed
}
