package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

func runCompactCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"compact"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestCompactCommand(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	natstest.NamespaceStreams(t, js, "orders")
	ctx := context.Background()
	for _, v := range []string{"1", "2", "3"} {
		msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: "orders"}, &prismv1.KeyValueEvent{
			Id:     []byte("r"),
			Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte(v)}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCompactCmd(t, "orders", "--nats-url", s.ClientURL())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"compacted namespace orders (stream PRISM_ORDERS)", "messages    3 -> 1", "1 rolled up", "removed     3 messages"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCompactCmd(t, "orders", "--nats-url", s.ClientURL(), "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Namespace string `json:"namespace"`
		replay.CompactStats
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Namespace != "orders" || got.Subjects != 1 || got.RolledUp != 0 || got.MsgsAfter != 1 {
		t.Fatalf("--json: %+v (%v) from:\n%s", got, err, out)
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.Stream("legacy"), Subjects: subjects.StreamSubjects("legacy")}); err != nil {
		t.Fatal(err)
	}
	if out, err := runCompactCmd(t, "legacy", "--nats-url", s.ClientURL()); err == nil || !strings.Contains(err.Error(), "prism apply") {
		t.Fatalf("compact of a stream without rollups: %v\n%s", err, out)
	}
	if _, err := runCompactCmd(t, "Not.Valid", "--nats-url", s.ClientURL()); err == nil {
		t.Fatal("compact accepted an invalid namespace")
	}

	// A timeseries namespace is bounded by its retention: compact says it
	// does not apply and fails, rather than "compacted".
	natstest.NamespaceStreams(t, js, "metrics")
	for range 2 {
		if _, err := js.Publish(ctx, subjects.TimeSeriesEvent("metrics", []byte("cpu")), []byte("e")); err != nil {
			t.Fatal(err)
		}
	}
	out, err = runCompactCmd(t, "metrics", "--nats-url", s.ClientURL())
	if !errors.Is(err, status.ErrFailedPrecondition) || !errors.Is(err, replay.ErrNotKeyValue) || !strings.Contains(err.Error(), "compaction does not apply to namespace metrics, a timeseries namespace: its stream is bounded by its retention") || strings.Contains(out, "compacted") {
		t.Errorf("compact of a timeseries namespace: %v\n%s", err, out)
	}
	if n := streamMsgs(t, js, "metrics"); n != 2 {
		t.Errorf("timeseries stream after a refused compact: %d messages, want 2", n)
	}
	// An unknown namespace is NAMESPACE_NOT_FOUND, not JetStream's error.
	out, err = runCompactCmd(t, "nope", "--nats-url", s.ClientURL())
	if !errors.Is(err, status.ErrNamespaceNotFound) || !strings.Contains(err.Error(), "namespace nope has no event stream PRISM_NOPE: it is not registered") {
		t.Errorf("compact of an unknown namespace: %v\n%s", err, out)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, ns string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), subjects.Stream(ns))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
