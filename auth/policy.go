package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Permission is one thing a principal may do on a namespace.
type Permission string

// Permissions of a namespace policy.
const (
	// Read allows the read requests (prism.<ns>.read.>).
	Read Permission = "read"
	// Write allows the write requests (prism.<ns>.write.>).
	Write Permission = "write"
	// Subscribe allows following the namespace's changes
	// (prism.<ns>.changes.>).
	Subscribe Permission = "subscribe"
	// ReadPII allows reading PII fields in clear. It has no subject of its
	// own: it only matters together with Read, which the gateway checks.
	ReadPII Permission = "read_pii"
	// Admin allows the namespace's admin operations (apply, delete,
	// migrate, replay, compact) on prism.$admin.>.
	Admin Permission = "admin"
)

// AllPermissions returns every permission, in a fixed order (read, write,
// subscribe, read_pii, admin).
func AllPermissions() []Permission {
	return []Permission{Read, Write, Subscribe, ReadPII, Admin}
}

// ParsePermission returns the permission named s, or an error wrapping
// ErrInvalidPolicy that lists the valid names.
func ParsePermission(s string) (Permission, error) {
	if p := Permission(s); slices.Contains(AllPermissions(), p) {
		return p, nil
	}
	return "", fmt.Errorf("%w: unknown permission %q; want one of read, write, subscribe, read_pii, admin", ErrInvalidPolicy, s)
}

// Entry forms of a policy.
const (
	// Everyone is the entry that matches any authenticated principal.
	Everyone = "*"
	// GroupPrefix starts an entry that matches the members of a group:
	// "group:platform".
	GroupPrefix = "group:"
)

// Policy says who may do what on one namespace. Each field lists entries:
// a principal name (matched exactly, case-sensitively), "group:<g>" (any
// principal with group g) or "*" (any authenticated principal). An empty
// policy allows nobody: deny by default. A principal of development mode
// (Via "none", Anonymous) matches no entry.
type Policy struct {
	Read      []string `yaml:"read,omitempty" json:"read,omitempty"`
	Write     []string `yaml:"write,omitempty" json:"write,omitempty"`
	Subscribe []string `yaml:"subscribe,omitempty" json:"subscribe,omitempty"`
	ReadPII   []string `yaml:"read_pii,omitempty" json:"read_pii,omitempty"`
	Admin     []string `yaml:"admin,omitempty" json:"admin,omitempty"`
}

// Entries returns the entries of perm (nil for an unknown permission).
func (p Policy) Entries(perm Permission) []string {
	switch perm {
	case Read:
		return p.Read
	case Write:
		return p.Write
	case Subscribe:
		return p.Subscribe
	case ReadPII:
		return p.ReadPII
	case Admin:
		return p.Admin
	}
	return nil
}

// IsZero reports whether p lists no entry at all.
func (p Policy) IsZero() bool {
	for _, perm := range AllPermissions() {
		if len(p.Entries(perm)) > 0 {
			return false
		}
	}
	return true
}

// Validate checks every entry. The error wraps ErrInvalidPolicy and names
// the field and position of the first bad entry: an empty entry, "group:"
// without a name, a name with control characters, surrounding spaces or a
// '*' (allowed only as the whole entry), or one longer than MaxNameLen.
func (p Policy) Validate() error {
	for _, perm := range AllPermissions() {
		for i, e := range p.Entries(perm) {
			if err := validateEntry(e); err != nil {
				return fmt.Errorf("%w: %s[%d]: %v", ErrInvalidPolicy, perm, i, err)
			}
		}
	}
	return nil
}

func validateEntry(e string) error {
	if e == Everyone {
		return nil
	}
	name, isGroup := strings.CutPrefix(e, GroupPrefix)
	if isGroup && name == "" {
		return fmt.Errorf("entry %q has no group name", e)
	}
	if err := checkText(name); err != nil {
		if isGroup {
			return fmt.Errorf("group name %v", err)
		}
		return fmt.Errorf("entry %v", err)
	}
	if strings.Contains(name, Everyone) {
		return fmt.Errorf("entry %q: '*' is allowed only as the whole entry (any authenticated principal)", e)
	}
	return nil
}

// matches reports whether one of entries matches the authenticated
// principal p.
func matches(entries []string, p Principal) bool {
	if !p.authenticated() {
		return false
	}
	for _, e := range entries {
		switch g, isGroup := strings.CutPrefix(e, GroupPrefix); {
		case e == Everyone:
			return true
		case isGroup:
			if slices.Contains(p.Groups, g) {
				return true
			}
		case e == p.Name:
			return true
		}
	}
	return false
}

// Allows reports whether p lists an entry for perm that matches principal
// pr. It does not know global admins nor service principals: see
// Policies.Allows.
func (p Policy) Allows(pr Principal, perm Permission) bool {
	return matches(p.Entries(perm), pr)
}

// Grants returns the permissions p gives principal pr, in the order of
// AllPermissions (nil for none).
func (p Policy) Grants(pr Principal) []Permission {
	var out []Permission
	for _, perm := range AllPermissions() {
		if p.Allows(pr, perm) {
			out = append(out, perm)
		}
	}
	return out
}

// Policies is the policy view the gateway and the auth callout decide
// with: global admins and each namespace's policy.
//
// Deny by default: a namespace without a policy (or with an empty one) is
// open to global admins only. Global admins have every permission on every
// namespace, existing or not yet created, and may create namespaces.
// Service principals (Via "service": Prism's own processes in the PRISM
// account, which reach every stream through JetStream anyway) are allowed
// everything.
type Policies struct {
	// Admins lists the global admins, as policy entries.
	Admins []string `yaml:"admins,omitempty" json:"admins,omitempty"`
	// Namespaces holds the policy of each namespace by name.
	Namespaces map[string]Policy `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
}

// Validate checks the admin entries, every namespace name
// (subjects.ValidateNamespace) and every policy. The error wraps
// ErrInvalidPolicy and names the namespace and field.
func (ps Policies) Validate() error {
	for i, e := range ps.Admins {
		if err := validateEntry(e); err != nil {
			return fmt.Errorf("%w: admins[%d]: %v", ErrInvalidPolicy, i, err)
		}
	}
	for _, ns := range ps.names() {
		if err := subjects.ValidateNamespace(ns); err != nil {
			return fmt.Errorf("%w: namespaces: %v", ErrInvalidPolicy, err)
		}
		if err := ps.Namespaces[ns].Validate(); err != nil {
			return fmt.Errorf("namespace %q: %w", ns, err)
		}
	}
	return nil
}

// names returns the namespace names, sorted.
func (ps Policies) names() []string {
	names := make([]string, 0, len(ps.Namespaces))
	for ns := range ps.Namespaces {
		names = append(names, ns)
	}
	slices.Sort(names)
	return names
}

// IsGlobalAdmin reports whether p is a global admin (or a service
// principal).
func (ps Policies) IsGlobalAdmin(p Principal) bool {
	return p.Via == ViaService || matches(ps.Admins, p)
}

// Allows reports whether p may perm on namespace ns: a service principal
// or a global admin always, anyone else when ns's policy allows it.
func (ps Policies) Allows(p Principal, ns string, perm Permission) bool {
	if ps.IsGlobalAdmin(p) {
		return true
	}
	pol, ok := ps.Namespaces[ns]
	return ok && pol.Allows(p, perm)
}

// Grants returns the permissions p has on namespace ns, in the order of
// AllPermissions.
func (ps Policies) Grants(p Principal, ns string) []Permission {
	var out []Permission
	for _, perm := range AllPermissions() {
		if ps.Allows(p, ns, perm) {
			out = append(out, perm)
		}
	}
	return out
}

// Authorize returns nil when p may perm on namespace ns, else a
// PERMISSION_DENIED *status.Error whose message names the missing
// permission and the namespace (and never what else exists: an unknown
// namespace is refused the same way). It is the gateway's check on every
// request.
func (ps Policies) Authorize(p Principal, ns string, perm Permission) error {
	if ps.Allows(p, ns, perm) {
		return nil
	}
	op := fmt.Sprintf("authorize %s %s", perm, ns)
	if !p.authenticated() {
		return &status.Error{Op: op, Code: status.ErrPermissionDenied.Code,
			Message: fmt.Sprintf("permission %q on namespace %q needs an authenticated caller; connect with credentials (token, certificate, nkey or creds)", perm, ns)}
	}
	return &status.Error{Op: op, Code: status.ErrPermissionDenied.Code,
		Message: fmt.Sprintf("%s lacks permission %q on namespace %q; ask a namespace admin to grant it in the namespace's policy", p.Name, perm, ns)}
}
