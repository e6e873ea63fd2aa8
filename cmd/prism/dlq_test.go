package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// prism dlq over the admin API: list and show print a dead letter with its
// origin and event, drop refuses without confirmation and leaves it,
// redrive republishes the event to the namespace's stream (marked with
// Prism-Redrive-Of) and removes the dead letter.
func TestDLQCommands(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	natstest.NamespaceStreams(t, js, "orders")
	startAdmin(t, nc)
	ctx := context.Background()

	ev, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: "orders"}, &prismv1.KeyValueEvent{Id: []byte("o1"),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	dl := nats.NewMsg(subjects.DeadLetter("orders"))
	dl.Data = ev.Data
	dl.Header.Set(subjects.HeaderType, ev.Header.Get(subjects.HeaderType))
	dl.Header.Set(subjects.HeaderDLQReason, "the target refused it: too large")
	dl.Header.Set(subjects.HeaderDLQSeq, "1")
	dl.Header.Set(subjects.HeaderDLQSubject, ev.Subject)
	dl.Header.Set(subjects.HeaderDLQTarget, "sqlite")
	if _, err := js.PublishMsg(ctx, dl); err != nil {
		t.Fatal(err)
	}
	url := "--nats-url=" + s.ClientURL()

	out, err := runCLI(t, "dlq", "list", "orders", url)
	if err != nil || !strings.Contains(out, "the target refused it: too large") || !strings.Contains(out, ev.Subject) || !strings.Contains(out, "sqlite") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = runCLI(t, "dlq", "show", "orders", "1", url)
	if err != nil || !strings.Contains(out, "stream seq 1") || !strings.Contains(out, subjects.HeaderType+": io.prism.kv.put") || !strings.Contains(out, "base64") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "dlq", "show", "orders", "9", url); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("show of no dead letter: %v, want NOT_FOUND\n%s", err, out)
	}
	root := newRootCmd()
	var buf bytes.Buffer
	root.SetIn(strings.NewReader("wrong\n"))
	root.SetOut(&buf)
	root.SetErr(&buf)
	root.SetArgs([]string{"dlq", "drop", "orders", "1", url})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "not confirmed") || !strings.Contains(buf.String(), "Type the namespace name") {
		t.Fatalf("drop answered with the wrong name: %v, want not confirmed\n%s", err, buf.String())
	}
	if out, err = runCLI(t, "dlq", "redrive", "orders", "1", "--all", url); err == nil {
		t.Fatalf("redrive with both SEQ and --all succeeded\n%s", out)
	}
	out, err = runCLI(t, "dlq", "redrive", "orders", "--all", "--wait=0", url)
	if err != nil || !strings.Contains(out, "1 redriven") || !strings.Contains(out, "0 dead letters left") {
		t.Fatalf("redrive: %v\n%s", err, out)
	}
	stream, err := js.Stream(ctx, subjects.Stream("orders"))
	if err != nil {
		t.Fatal(err)
	}
	copyMsg, err := stream.GetMsg(ctx, ack.Sequence+1)
	if err != nil || copyMsg.Subject != ev.Subject || copyMsg.Header.Get(subjects.HeaderRedriveOf) != "1" || string(copyMsg.Data) != string(ev.Data) {
		t.Fatalf("republished event = %+v, %v; want a copy of seq 1", copyMsg, err)
	}
	if out, err = runCLI(t, "dlq", "list", "orders", url); err != nil || !strings.Contains(out, "no dead letters") {
		t.Fatalf("list after the redrive: %v\n%s", err, out)
	}
}
