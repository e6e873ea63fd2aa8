package auth_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/status"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		policy  auth.Policy
		wantErr error
		wantMsg string // substring naming the field
	}{
		{"empty", auth.Policy{}, nil, ""},
		{"names, groups and everyone", auth.Policy{Read: []string{"*"}, Write: []string{"alice", "group:writers"}, Admin: []string{"spiffe://prod/ns/svc"}}, nil, ""},
		{"name with inner spaces (a certificate CN)", auth.Policy{Read: []string{"Alice Smith"}}, nil, ""},
		{"empty entry", auth.Policy{Write: []string{"alice", ""}}, auth.ErrInvalidPolicy, "write[1]"},
		{"group without a name", auth.Policy{Subscribe: []string{"group:"}}, auth.ErrInvalidPolicy, "subscribe[0]"},
		{"control character", auth.Policy{ReadPII: []string{"al\nice"}}, auth.ErrInvalidPolicy, "read_pii[0]"},
		{"leading space", auth.Policy{Admin: []string{" alice"}}, auth.ErrInvalidPolicy, "admin[0]"},
		{"glob", auth.Policy{Read: []string{"ali*"}}, auth.ErrInvalidPolicy, "read[0]"},
		{"group glob", auth.Policy{Write: []string{"group:*"}}, auth.ErrInvalidPolicy, "write[0]"},
		{"group with control character", auth.Policy{Read: []string{"group:a\x00"}}, auth.ErrInvalidPolicy, "read[0]"},
		{"invalid UTF-8", auth.Policy{Read: []string{"\xff"}}, auth.ErrInvalidPolicy, "read[0]"},
		{"too long", auth.Policy{Read: []string{strings.Repeat("a", auth.MaxNameLen+1)}}, auth.ErrInvalidPolicy, "read[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err %q does not name %s", err, tt.wantMsg)
			}
		})
	}
}

func TestPoliciesValidate(t *testing.T) {
	tests := []struct {
		name    string
		ps      auth.Policies
		wantErr error
	}{
		{"valid", auth.Policies{Admins: []string{"group:platform"}, Namespaces: map[string]auth.Policy{"demo": {Read: []string{"*"}}}}, nil},
		{"bad admin entry", auth.Policies{Admins: []string{"group:"}}, auth.ErrInvalidPolicy},
		{"wildcard namespace", auth.Policies{Namespaces: map[string]auth.Policy{"*": {Read: []string{"*"}}}}, auth.ErrInvalidPolicy},
		{"dotted namespace", auth.Policies{Namespaces: map[string]auth.Policy{"a.b": {}}}, auth.ErrInvalidPolicy},
		{"bad entry in a namespace", auth.Policies{Namespaces: map[string]auth.Policy{"demo": {Write: []string{""}}}}, auth.ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.ps.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestPolicyAllows(t *testing.T) {
	pol := auth.Policy{
		Read:      []string{"*"},
		Write:     []string{"alice@example.com", "group:writers"},
		Subscribe: []string{"group:followers"},
		ReadPII:   []string{"bob"},
	}
	tests := []struct {
		name string
		p    auth.Principal
		want []auth.Permission
	}{
		{"by name", alice, []auth.Permission{auth.Read, auth.Write}},
		{"by group", auth.Principal{Name: "carol", Groups: []string{"followers", "writers"}, Via: auth.ViaTLS}, []auth.Permission{auth.Read, auth.Write, auth.Subscribe}},
		{"everyone only", auth.Principal{Name: "dave", Via: auth.ViaNKey}, []auth.Permission{auth.Read}},
		{"read_pii by name", bob, []auth.Permission{auth.Read, auth.ReadPII}},
		{"names are case-sensitive", auth.Principal{Name: "Bob", Via: auth.ViaTLS}, []auth.Permission{auth.Read}},
		{"a group entry does not match a name", auth.Principal{Name: "writers", Via: auth.ViaOIDC}, []auth.Permission{auth.Read}},
		{"anonymous matches nothing, not even *", auth.Anonymous, nil},
		{"a principal without name matches nothing", auth.Principal{Via: auth.ViaOIDC, Groups: []string{"writers"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pol.Grants(tt.p); !slices.Equal(got, tt.want) {
				t.Fatalf("Grants = %v, want %v", got, tt.want)
			}
			for _, perm := range auth.AllPermissions() {
				if got, want := pol.Allows(tt.p, perm), slices.Contains(tt.want, perm); got != want {
					t.Fatalf("Allows(%s) = %t, want %t", perm, got, want)
				}
			}
		})
	}
	if pol.IsZero() || !(auth.Policy{}).IsZero() || (auth.Policy{Admin: []string{"x"}}).IsZero() {
		t.Fatal("IsZero is wrong")
	}
}

func TestPoliciesAllows(t *testing.T) {
	ps := testPolicies()
	tests := []struct {
		name string
		p    auth.Principal
		ns   string
		want []auth.Permission
	}{
		{"namespace policy", alice, "demo", []auth.Permission{auth.Read, auth.Write, auth.Subscribe, auth.Admin}},
		{"another namespace", alice, "other", nil},
		{"no policy: deny by default", alice, "fresh", nil},
		{"global admin everywhere", root, "demo", auth.AllPermissions()},
		{"global admin on a namespace without policy", root, "fresh", auth.AllPermissions()},
		{"service principal", auth.ServicePrincipal, "fresh", auth.AllPermissions()},
		{"anonymous", auth.Anonymous, "demo", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ps.Grants(tt.p, tt.ns); !slices.Equal(got, tt.want) {
				t.Fatalf("Grants = %v, want %v", got, tt.want)
			}
		})
	}
	if ps.IsGlobalAdmin(alice) || !ps.IsGlobalAdmin(root) {
		t.Fatal("IsGlobalAdmin is wrong")
	}
}

func TestPoliciesAuthorize(t *testing.T) {
	ps := testPolicies()
	if err := ps.Authorize(alice, "demo", auth.Write); err != nil {
		t.Fatalf("alice write demo: %v", err)
	}
	tests := []struct {
		name     string
		p        auth.Principal
		ns       string
		perm     auth.Permission
		wantMsgs []string
	}{
		{"missing permission", bob, "demo", auth.Write, []string{`"write"`, `"demo"`, "bob"}},
		{"unknown namespace", bob, "secret", auth.Read, []string{`"read"`, `"secret"`}},
		{"unauthenticated", auth.Anonymous, "demo", auth.Read, []string{"authenticated", `"read"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ps.Authorize(tt.p, tt.ns, tt.perm)
			if !errors.Is(err, status.ErrPermissionDenied) {
				t.Fatalf("err = %v, want PERMISSION_DENIED", err)
			}
			msg := status.Convert(err).Message
			for _, w := range tt.wantMsgs {
				if !strings.Contains(msg, w) {
					t.Fatalf("message %q does not name %s", msg, w)
				}
			}
		})
	}
}

func TestParsePermission(t *testing.T) {
	for _, p := range auth.AllPermissions() {
		got, err := auth.ParsePermission(string(p))
		if err != nil || got != p {
			t.Fatalf("ParsePermission(%s) = %s, %v", p, got, err)
		}
	}
	if _, err := auth.ParsePermission("delete"); !errors.Is(err, auth.ErrInvalidPolicy) {
		t.Fatalf("ParsePermission(delete) err = %v", err)
	}
}

// TestPoliciesFileFormat: the YAML and JSON forms use the documented
// field names.
func TestPoliciesFileFormat(t *testing.T) {
	const doc = `
admins: [group:platform]
namespaces:
  orders:
    read: ["*"]
    write: [svc-orders, group:writers]
    subscribe: [group:analytics]
    read_pii: [group:support]
    admin: [alice]
`
	var ps auth.Policies
	if err := yaml.Unmarshal([]byte(doc), &ps); err != nil {
		t.Fatal(err)
	}
	want := auth.Policies{
		Admins: []string{"group:platform"},
		Namespaces: map[string]auth.Policy{"orders": {
			Read: []string{"*"}, Write: []string{"svc-orders", "group:writers"}, Subscribe: []string{"group:analytics"},
			ReadPII: []string{"group:support"}, Admin: []string{"alice"},
		}},
	}
	if !equalPolicies(ps, want) {
		t.Fatalf("yaml = %+v, want %+v", ps, want)
	}
	if err := ps.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"admins":["group:platform"],"namespaces":{"orders":{"read":["*"],"write":["svc-orders","group:writers"],"subscribe":["group:analytics"],"read_pii":["group:support"],"admin":["alice"]}}}`
	if string(b) != wantJSON {
		t.Fatalf("json = %s, want %s", b, wantJSON)
	}
	if b, _ := json.Marshal(auth.Policy{}); string(b) != "{}" {
		t.Fatalf("empty policy json = %s, want {}", b)
	}
}

func equalPolicies(a, b auth.Policies) bool {
	if !slices.Equal(a.Admins, b.Admins) || len(a.Namespaces) != len(b.Namespaces) {
		return false
	}
	for ns, pa := range a.Namespaces {
		pb, ok := b.Namespaces[ns]
		if !ok {
			return false
		}
		for _, perm := range auth.AllPermissions() {
			if !slices.Equal(pa.Entries(perm), pb.Entries(perm)) {
				return false
			}
		}
	}
	return true
}
