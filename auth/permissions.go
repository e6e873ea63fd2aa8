package auth

import (
	"slices"

	"github.com/nats-io/jwt/v2"

	"github.com/prism-data/prism/subjects"
)

// OwnerVerify is the owner operation (subjects.Owner) an administrator
// of a namespace may call from the application account: prism migrate
// verify.
const OwnerVerify = "verify"

// readOnlyAdmin are the admin operations any principal with a
// permission on some namespace may send; the admin API answers them for
// the namespaces it may see only.
var readOnlyAdmin = []string{"ns.list", "ns.get", "ns.history"}

// ChangeGrants lists the namespaces whose change fan-out
// (subjects.Changes) principal p may subscribe to under ps, sorted, or
// all == true for a global admin, whose permission covers every namespace.
// The fan-out is core NATS that never reaches Prism: the callout audits
// these grants when it admits a connection (CalloutConfig.Audit).
func ChangeGrants(p Principal, ps Policies) (nss []string, all bool) {
	if ps.IsGlobalAdmin(p) {
		return nil, true
	}
	for ns, pol := range ps.Namespaces {
		if subjects.ValidateNamespace(ns) == nil && pol.Allows(p, Subscribe) {
			nss = append(nss, ns)
		}
	}
	slices.Sort(nss)
	return nss, false
}

// UserPermissions returns the NATS subject permissions of principal p in
// the application account, derived from ps: the first enforcement of the
// policies, by the server itself (the gateway checks them again on every
// request).
//
// Publish is allowed on prism.<ns>.write.> for each namespace p may write,
// prism.<ns>.read.> for each it may read, prism.<ns>.subscribe.> for each
// it may subscribe to, and prism.$admin.> when it administers any
// namespace; a global admin gets the wildcard forms (prism.*.write.>,
// prism.*.read.>, prism.*.subscribe.>, prism.$admin.>), which cover
// namespaces created later. Subscribe is allowed on
// subjects.InboxPrefix(p.Name)+".>" (its own replies only: the application
// account is shared, so _INBOX.> would let one principal read another's
// replies) and prism.<ns>.changes.> for each namespace p may subscribe to
// (prism.*.changes.> for a global admin). A principal that may subscribe
// to any namespace may also subscribe under its own delivery prefix
// (subjects.DeliverPrefix, where its subscriptions' changes arrive) and
// publish $JS.API.INFO, which the server answers itself with "no
// JetStream" in the application account (how the Go client picks the
// subscription path), and prism.*.subscribe.open, whose handler checks the
// policy and answers PERMISSION_DENIED naming what is missing: a request
// the server drops gets no answer, and a subscriber could not tell a
// refusal from a gateway that is down. Pulls and closes stay limited to
// the namespaces p may subscribe to, and an open grants nothing the
// gateway does not (Anonymous gets neither). read_pii has no subject.
// Everything else is denied: when nothing may be published the publish
// permission is an explicit deny of ">", because an empty allow list would
// mean "allow all" to the server. Namespace names that are not valid
// (subjects.ValidateNamespace) are skipped, so that no map key can inject
// a wildcard. The lists are sorted, so equal inputs give equal JWTs.
func UserPermissions(p Principal, ps Policies) jwt.Permissions {
	var pub, sub []string
	sub = append(sub, subjects.InboxPrefix(p.Name)+".>")
	if ps.IsGlobalAdmin(p) {
		pub = append(pub, subjects.Write("*", ">"), subjects.Read("*", ">"), subjects.Subscribe("*", ">"), subjects.AllAdmin(), subjects.Owner("*", OwnerVerify), subjects.JetStreamInfo)
		sub = append(sub, subjects.Changes("*"), subjects.DeliverPrefix(p.Name)+".>")
	} else {
		admin, any, follows := false, false, false
		for ns, pol := range ps.Namespaces {
			if subjects.ValidateNamespace(ns) != nil {
				continue
			}
			if pol.Allows(p, Write) {
				pub = append(pub, subjects.Write(ns, ">"))
			}
			if pol.Allows(p, Read) {
				pub = append(pub, subjects.Read(ns, ">"))
			}
			if pol.Allows(p, Subscribe) {
				sub = append(sub, subjects.Changes(ns))
				pub = append(pub, subjects.Subscribe(ns, ">"))
				follows = true
			}
			if pol.Allows(p, Admin) {
				admin = true
				pub = append(pub, subjects.Owner(ns, OwnerVerify))
			}
			any = any || len(pol.Grants(p)) > 0
		}
		if p.Via != ViaNone {
			pub = append(pub, subjects.JetStreamInfo, subjects.Subscribe("*", subjects.SubscribeOpen))
		}
		if follows {
			sub = append(sub, subjects.DeliverPrefix(p.Name)+".>")
		}
		switch {
		case admin:
			pub = append(pub, subjects.AllAdmin())
		case any:
			for _, op := range readOnlyAdmin {
				pub = append(pub, subjects.Admin(op))
			}
		}
	}
	slices.Sort(pub)
	slices.Sort(sub)
	var perms jwt.Permissions
	perms.Sub.Allow = sub
	if len(pub) == 0 {
		perms.Pub.Deny = jwt.StringList{">"}
	} else {
		perms.Pub.Allow = pub
	}
	return perms
}
