package gateway_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// relayed reads the deliveries of one pull through the gateway's relay:
// each must carry the stored subject and the JetStream metadata; it
// returns the decoded events, their stream sequences and the status that
// ended the pull ("" when n came).
func relayed(t *testing.T, sub *nats.Subscription, n int) ([]*prismv1.KeyValueEvent, []uint64, string) {
	t.Helper()
	var (
		evs  []*prismv1.KeyValueEvent
		seqs []uint64
	)
	for len(evs) < n {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d deliveries: %v", len(evs), err)
		}
		if st := m.Header.Get("Status"); st != "" {
			if st == "100" {
				continue
			}
			return evs, seqs, st
		}
		if m.Subject != sub.Subject {
			t.Fatalf("delivery on %q, want the delivery subject %q", m.Subject, sub.Subject)
		}
		d, err := subjects.ParseDelivery(m.Header.Get(subjects.HeaderRelayDelivery))
		if err != nil {
			t.Fatalf("relayed delivery without JetStream metadata: %v", err)
		}
		ev, err := subjects.DecodeKeyValueEvent(m.Header.Get(subjects.HeaderRelaySubject), m.Header, m.Data)
		if err != nil {
			t.Fatalf("relayed delivery does not decode with its stored subject: %v", err)
		}
		evs, seqs = append(evs, ev), append(seqs, d.StreamSeq)
	}
	return evs, seqs, ""
}

func TestSubscribeShowsPIIAsTheCallerMaySee(t *testing.T) {
	sec := testSecurity{grants: map[string][]auth.Permission{
		"writer":   {auth.Write},
		"follower": {auth.Subscribe},
		"support":  {auth.Subscribe, auth.ReadPII},
	}}
	e := newEnv(t, envConfig{
		kek:  testKEK(t),
		opts: []gateway.Option{gateway.WithSecurity(sec), gateway.WithAuditor(&testAuditor{})},
		namespace: func(n *namespaces.Namespace) {
			n.Fields = namespaces.NewNames("email", "name", "nick")
			n.PII = namespaces.NewPIIFields(namespaces.PIIField{Name: "email", Kind: pii.KindEmail}, namespaces.PIIField{Name: "name", Kind: pii.KindName})
		},
	})
	var seqs []uint64
	for _, id := range []string{"u1", "u2"} {
		var w prismv1.WriteResponse
		if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), profilePut(id), &w); er != nil {
			t.Fatalf("put: %v", er)
		}
		seqs = append(seqs, w.GetSeq())
	}
	var del prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(testNS, "delete"), &prismv1.DeleteRequest{Id: []byte("u1")}, &del); er != nil {
		t.Fatalf("delete: %v", er)
	}
	seqs = append(seqs, del.GetSeq())
	// The stream itself holds the values sealed (what a direct subscriber
	// reads) and says so in its metadata, so that the client goes through
	// Prism by itself.
	if bytes.Contains(storedMsg(t, e.js, seqs[0]).Data, []byte(testEmail)) {
		t.Fatal("the stored event holds the email in plaintext")
	}
	if st, err := e.js.Stream(t.Context(), subjects.Stream(testNS)); err != nil || st.CachedInfo().Config.Metadata[subjects.StreamMetaPII] == "" {
		t.Fatalf("stream metadata %v (%v): want %s set", st.CachedInfo().Config.Metadata, err, subjects.StreamMetaPII)
	}

	for _, tc := range []struct {
		who         string
		email, name string
	}{
		{"support", testEmail, testName},
		{"follower", "a***@example.com", "A*** L***"},
	} {
		open := e.open(t, tc.who, &prismv1.SubscribeOpenRequest{})
		sub, err := e.nc.SubscribeSync(open.GetDeliverSubject())
		if err != nil {
			t.Fatal(err)
		}
		next := &prismv1.SubscribeNextRequest{Consumer: open.GetConsumer(), Batch: 10, ExpiresMs: 500, HeartbeatMs: 100}
		if er := callAs(t, e, tc.who, subjects.Subscribe(testNS, subjects.SubscribeNext), next, &prismv1.SubscribeAck{}); er != nil {
			t.Fatalf("next as %s: %v", tc.who, er)
		}
		evs, got, st := relayed(t, sub, 10)
		if st != "408" || len(evs) != 3 || got[0] != seqs[0] || got[1] != seqs[1] || got[2] != seqs[2] {
			t.Fatalf("as %s: %d changes at %v ended by %q; want 3 at %v ended by 408", tc.who, len(evs), got, st, seqs)
		}
		for _, ev := range evs[:2] {
			g := map[string]string{}
			for _, it := range ev.GetPut().GetItems() {
				g[string(it.GetKey())] = string(it.GetValue())
			}
			if len(g) != 3 || g["email"] != tc.email || g["name"] != tc.name || g["nick"] != "countess" {
				t.Errorf("as %s: change of %s shows %v, want email %q name %q nick countess", tc.who, ev.GetId(), g, tc.email, tc.name)
			}
		}
		if evs[2].GetDelete() == nil || string(evs[2].GetId()) != "u1" {
			t.Errorf("as %s: third change %v, want the delete of u1", tc.who, evs[2])
		}
		_ = sub.Unsubscribe()
	}
}
