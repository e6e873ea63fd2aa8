package namespaces

import "github.com/prism-data/prism/auth"

// Access is a namespace's access policy as its spec declares it (the
// access: block): per permission, principal names, "group:<g>" or "*".
// It is auth.Policy in a comparable form, so that a Namespace stays
// comparable; Policy converts.
type Access struct {
	Read      Names `yaml:"read,omitempty" json:"read,omitzero"`
	Write     Names `yaml:"write,omitempty" json:"write,omitzero"`
	Subscribe Names `yaml:"subscribe,omitempty" json:"subscribe,omitzero"`
	ReadPII   Names `yaml:"read_pii,omitempty" json:"read_pii,omitzero"`
	Admin     Names `yaml:"admin,omitempty" json:"admin,omitzero"`
}

// Policy is a as the policy the gateway and the auth callout decide with.
func (a Access) Policy() auth.Policy {
	return auth.Policy{Read: a.Read.List(), Write: a.Write.List(), Subscribe: a.Subscribe.List(), ReadPII: a.ReadPII.List(), Admin: a.Admin.List()}
}

// IsZero reports whether a lists nobody.
func (a Access) IsZero() bool { return a == Access{} }
