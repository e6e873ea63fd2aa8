package auth_test

import (
	"slices"
	"testing"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/subjects"
)

func TestUserPermissions(t *testing.T) {
	ps := testPolicies()
	ps.Namespaces["zeta"] = auth.Policy{Read: []string{"*"}, Subscribe: []string{"*"}}
	// Keys that are not namespace names must never become subjects.
	ps.Namespaces["*"] = auth.Policy{Write: []string{"*"}}
	ps.Namespaces[">"] = auth.Policy{Write: []string{"*"}}
	ps.Namespaces["a.b"] = auth.Policy{Write: []string{"*"}}
	subOnly := auth.Policies{Namespaces: map[string]auth.Policy{"feed": {Subscribe: []string{"nobody"}}}}
	nobody := auth.Principal{Name: "nobody", Via: auth.ViaOIDC}
	inbox := func(p auth.Principal) string { return subjects.InboxPrefix(p.Name) + ".>" }
	deliver := func(p auth.Principal) string { return subjects.DeliverPrefix(p.Name) + ".>" }
	tests := []struct {
		name     string
		p        auth.Principal
		ps       auth.Policies
		wantPub  []string
		wantDeny []string
		wantSub  []string
	}{
		{"writer, reader, follower and namespace admin", alice, ps,
			[]string{"$JS.API.INFO", "prism.$admin.>", "prism.$owner.verify.demo", "prism.*.subscribe.open", "prism.demo.read.>", "prism.demo.subscribe.>", "prism.demo.write.>", "prism.zeta.read.>", "prism.zeta.subscribe.>"}, nil,
			[]string{inbox(alice), deliver(alice), "prism.demo.changes.>", "prism.zeta.changes.>"}},
		{"reader and other's writer: read-only admin too", bob, ps,
			[]string{"$JS.API.INFO", "prism.$admin.ns.get", "prism.$admin.ns.history", "prism.$admin.ns.list", "prism.*.subscribe.open", "prism.demo.read.>", "prism.other.write.>", "prism.zeta.read.>", "prism.zeta.subscribe.>"}, nil,
			[]string{inbox(bob), deliver(bob), "prism.zeta.changes.>"}},
		{"global admin: wildcards", root, ps,
			[]string{"$JS.API.INFO", "prism.$admin.>", "prism.$owner.verify.*", "prism.*.read.>", "prism.*.subscribe.>", "prism.*.write.>"}, nil,
			[]string{inbox(root), deliver(root), "prism.*.changes.>"}},
		{"follower only: read-only admin", nobody, subOnly,
			[]string{"$JS.API.INFO", "prism.$admin.ns.get", "prism.$admin.ns.history", "prism.$admin.ns.list", "prism.*.subscribe.open", "prism.feed.subscribe.>"}, nil,
			[]string{inbox(nobody), deliver(nobody), "prism.feed.changes.>"}},
		{"no policies at all: own inbox, and asking to subscribe (refused by Prism)", nobody, auth.Policies{}, []string{"$JS.API.INFO", "prism.*.subscribe.open"}, nil,
			[]string{inbox(nobody)}},
		{"anonymous gets nothing from *", auth.Anonymous, ps, nil, []string{">"},
			[]string{inbox(auth.Anonymous)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := auth.UserPermissions(tt.p, tt.ps)
			if !slices.Equal(got.Pub.Allow, tt.wantPub) {
				t.Errorf("pub allow = %v, want %v", got.Pub.Allow, tt.wantPub)
			}
			if !slices.Equal(got.Pub.Deny, tt.wantDeny) {
				t.Errorf("pub deny = %v, want %v", got.Pub.Deny, tt.wantDeny)
			}
			want := slices.Sorted(slices.Values(tt.wantSub))
			if !slices.Equal(got.Sub.Allow, want) || len(got.Sub.Deny) != 0 {
				t.Errorf("sub = %+v, want allow %v", got.Sub, want)
			}
			if got.Resp != nil {
				t.Errorf("resp = %+v, want none", got.Resp)
			}
		})
	}
}

// TestUserPermissionsDeterministic: map order does not show.
func TestUserPermissionsDeterministic(t *testing.T) {
	ps := auth.Policies{Namespaces: map[string]auth.Policy{}}
	for _, ns := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		ps.Namespaces[ns] = auth.Policy{Read: []string{"*"}, Write: []string{"*"}, Subscribe: []string{"*"}}
	}
	first := auth.UserPermissions(alice, ps)
	for range 20 {
		got := auth.UserPermissions(alice, ps)
		if !slices.Equal(got.Pub.Allow, first.Pub.Allow) || !slices.Equal(got.Sub.Allow, first.Sub.Allow) {
			t.Fatalf("%v != %v", got, first)
		}
	}
	if !slices.IsSorted(first.Pub.Allow) || !slices.IsSorted(first.Sub.Allow) || len(first.Pub.Allow) != 29 {
		t.Fatalf("not sorted or incomplete: %+v", first)
	}
}
