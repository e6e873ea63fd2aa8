package node_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/pii"
)

// TestSubscribeOfPIINamespaceGoesThroughPrism: in development mode every
// caller may read PII, so a subscription shows it in plaintext; the
// client, left to choose, sees from the stream's metadata that its values
// are sealed and goes through Prism, which opens them. A subscription
// straight from JetStream gets the sealed bytes, never plaintext.
func TestSubscribeOfPIINamespaceGoesThroughPrism(t *testing.T) {
	n, admin, c := nodetest.Start(t, node.Config{})
	ns := namespaces.Namespace{
		Name: "people", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong,
		Fields: namespaces.NewNames("email", "nick"),
		PII:    namespaces.NewPIIFields(namespaces.PIIField{Name: "email", Kind: pii.KindEmail}),
	}
	ctx := context.Background()
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	const email = "grace.hopper@example.com"
	seq, err := c.KeyValue(ns.Name).Put(ctx, []byte("u1"), []client.Item{{Key: []byte("email"), Value: []byte(email)}, {Key: []byte("nick"), Value: []byte("amazing")}})
	if err != nil {
		t.Fatal(err)
	}
	_, nc := nodetest.Client(t, n.URL())
	directC, err := client.New(nc, client.WithSubscribeVia(client.SubscribeDirect))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		c      *client.Client
		sealed bool
	}{{"auto", c, false}, {"direct", directC, true}} {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		sub, err := tc.c.Subscribe(sctx, ns.Name)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := sub.Next(sctx)
		cancel()
		_ = sub.Stop()
		if err != nil || ch.Err != nil || ch.Seq != seq || ch.KeyValue.GetPut() == nil {
			t.Fatalf("%s: change %+v, %v; want the put at %d", tc.name, ch, err, seq)
		}
		got := map[string][]byte{}
		for _, it := range ch.KeyValue.GetPut().GetItems() {
			got[string(it.GetKey())] = it.GetValue()
		}
		if string(got["nick"]) != "amazing" {
			t.Fatalf("%s: nick %q", tc.name, got["nick"])
		}
		_, inspectErr := pii.Inspect(got["email"])
		if tc.sealed != (inspectErr == nil) || tc.sealed == bytes.Equal(got["email"], []byte(email)) {
			t.Fatalf("%s: email %q (sealed: %v), want sealed %v", tc.name, got["email"], inspectErr == nil, tc.sealed)
		}
	}
}
