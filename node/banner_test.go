package node_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/replay"
)

// The banner counts the served namespaces and offers a scan of a
// KeyValue one, on the node's URL.
func TestWriteBanner(t *testing.T) {
	n, admin, _ := nodetest.Start(t, node.Config{})
	var empty strings.Builder
	if err := n.WriteBanner(&empty); err != nil || empty.String() != "Prism is serving 0 namespace(s) on NATS "+n.URL()+"\n" {
		t.Fatalf("banner of no namespace = %q, %v", empty.String(), err)
	}
	res, err := admin.Apply(context.Background(), namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "orders", res.Revision)
	var out strings.Builder
	if err := n.WriteBanner(&out); err != nil {
		t.Fatal(err)
	}
	want := "Prism is serving 1 namespace(s) on NATS " + n.URL() + "\n  try: NATS_URL=" + n.URL() + " nats req prism.orders.read.scan '{}'\n"
	if out.String() != want {
		t.Fatalf("banner\n %q\nwant\n %q", out.String(), want)
	}
}

// A verify's text is its report's table, then where the migration stands
// and the next command.
func TestVerifyReplyWriteText(t *testing.T) {
	rep := node.VerifyReply{Report: replay.Report{Checkpoint: 7, Compared: 3, Matched: 2, Missing: 1}, State: namespaces.MigrationShadowing}
	var table, out strings.Builder
	if err := rep.Report.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteText(&out, "orders"); err != nil {
		t.Fatal(err)
	}
	want := table.String() + "\nmigration of orders is shadowing; next: " + namespaces.MigrationAdvice(namespaces.MigrationShadowing, false, "orders") + "\n"
	if out.String() != want || rep.Report.Passed() {
		t.Fatalf("text\n%s\nwant\n%s", out.String(), want)
	}
}
