package userprofile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/examples/userprofile"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/subjects"
)

// TestUserProfile applies the generated spec (backend postgres, strong),
// writes profiles through the generated client, reads them back, queries
// them by created_at range page by page in both orders, and checks that
// the stream never holds an email or a name in plaintext.
func TestUserProfile(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	ns, err := namespaces.LoadNamespaceFile("user_profile.namespace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ns.Backend != "postgres" || ns.Consistency != namespaces.Strong || ns.Abstraction != namespaces.AbstractionEntity {
		t.Fatalf("generated spec: %+v", ns)
	}
	// A name of its own, so that runs sharing the database do not meet.
	ns.Name = pgtest.Namespace(t, "user-profile-")
	t.Cleanup(func() { _ = postgres.DropSchema(context.Background(), dsn, ns.Name) })

	n, admin, c := nodetest.Start(t, node.Config{PostgresDSN: dsn})
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	profiles := userprofile.NewUserProfileClientFor(c, ns.Name)

	const count = 23
	for i := range count {
		p := &userprofile.UserProfile{UserId: fmt.Sprintf("u%02d", i), Email: fmt.Sprintf("user%02d@example.com", i), Name: fmt.Sprintf("User %02d", i), CreatedAt: int64(1000 + i%8)}
		if _, err := profiles.Put(ctx, p); err != nil {
			t.Fatalf("Put %s: %v", p.UserId, err)
		}
	}
	got, rev, err := profiles.Get(ctx, "u05")
	if err != nil {
		t.Fatal(err)
	}
	want := &userprofile.UserProfile{UserId: "u05", Email: "user05@example.com", Name: "User 05", CreatedAt: 1005}
	if !proto.Equal(got, want) || rev == 0 {
		t.Errorf("Get u05 = %v rev %d, want %v", got, rev, want)
	}
	lin, err := c.Entity(ns.Name).Lineage(ctx, "u05")
	if err != nil || lin.GetSeq() != rev || lin.GetEventId() == "" || lin.GetTime() == nil {
		t.Errorf("Lineage of u05 = %v, %v; want seq %d with its event id and time", lin, err, rev)
	}
	if _, _, err := profiles.Get(ctx, "nobody"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get of a missing profile: %v, want ErrNotFound", err)
	}

	// created_at in [1002, 1006): i%8 in 2..5, ordered by created_at then
	// user_id.
	var wantIDs []string
	for k := 2; k < 6; k++ {
		for i := range count {
			if i%8 == k {
				wantIDs = append(wantIDs, fmt.Sprintf("u%02d", i))
			}
		}
	}
	for _, desc := range []bool{false, true} {
		var ids []string
		token, pages := "", 0
		for {
			opts := []client.ReadOption{client.PageSize(4), client.PageToken(token)}
			if desc {
				opts = append(opts, client.Descending())
			}
			page, next, err := profiles.QueryByCreatedAt(ctx, 1002, 1006, opts...)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, p := range page {
				if p.CreatedAt < 1002 || p.CreatedAt >= 1006 {
					t.Errorf("%s created at %d is outside the range", p.UserId, p.CreatedAt)
				}
				ids = append(ids, p.UserId)
			}
			if next == "" {
				break
			}
			token = next
		}
		w := append([]string(nil), wantIDs...)
		if desc {
			for i, j := 0, len(w)-1; i < j; i, j = i+1, j-1 {
				w[i], w[j] = w[j], w[i]
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(w) {
			t.Errorf("descending=%v: %v, want %v", desc, ids, w)
		}
		if pages != (len(w)+3)/4 {
			t.Errorf("descending=%v: %d pages for %d profiles of 4 a page", desc, pages, len(w))
		}
	}
	if _, err := profiles.Delete(ctx, "u05"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := profiles.Get(ctx, "u05"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	same, _, err := profiles.QueryByCreatedAtEqual(ctx, 1005)
	if err != nil || len(same) != 2 || same[0].UserId != "u13" || same[1].UserId != "u21" {
		t.Errorf("QueryByCreatedAtEqual(1005) = %v, %v; want u13, u21 (u05 deleted)", same, err)
	}

	// The stream holds the profiles' PII sealed only.
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= count; seq++ {
		m, err := js.GetMsg(subjects.Stream(ns.Name), seq)
		if err != nil {
			t.Fatalf("stream seq %d: %v", seq, err)
		}
		if bytes.Contains(m.Data, []byte("@example.com")) || bytes.Contains(m.Data, []byte("User ")) {
			t.Fatalf("stream seq %d holds PII in plaintext", seq)
		}
	}
}
