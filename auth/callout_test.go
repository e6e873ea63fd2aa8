package auth_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/subjects"
)

// requestInfo is the part of the server's client info the tests read.
type requestInfo struct {
	Account string `json:"acc"`
	User    string `json:"user"`
}

// TestCalloutRequestIdentity: a client the callout admitted requests on
// its namespace's write subject; the responder in PRISM sees the APP
// account and the encoded principal, which FromRequestInfo decodes.
func TestCalloutRequestIdentity(t *testing.T) {
	for _, o := range []struct {
		name string
		opts envOptions
	}{{"plain", envOptions{}}, {"xkey", envOptions{xkey: true}}} {
		t.Run(o.name, func(t *testing.T) {
			e := newEnv(t, o.opts)
			e.respondInfo(subjects.Write("demo", ">"))
			c := e.mustConnect("alice-token", alice.Name)
			reply, err := c.Request(subjects.Write("demo", "put"), []byte("x"), waitFor)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			var ri requestInfo
			if err := json.Unmarshal(reply.Data, &ri); err != nil {
				t.Fatalf("Nats-Request-Info %q: %v", reply.Data, err)
			}
			if ri.Account != subjects.AppAccount || ri.User != auth.EncodePrincipal(alice) {
				t.Fatalf("request info = %+v, want account APP and user %s", ri, auth.EncodePrincipal(alice))
			}
			h := nats.Header{}
			h.Set(subjects.HeaderRequestInfo, string(reply.Data))
			p, err := auth.FromRequestInfo(h)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != alice.Name || p.Via != alice.Via || len(p.Groups) != 1 || p.Groups[0] != "writers" {
				t.Fatalf("principal = %+v, want %+v", p, alice)
			}
			if got := e.waitCount("allowed", 1); got != 1 {
				t.Fatalf("allowed = %v, want 1", got)
			}
		})
	}
}

// TestCalloutServerRefuses: what the policies do not grant, the server
// itself refuses with a permissions violation, and nothing reaches PRISM.
func TestCalloutServerRefuses(t *testing.T) {
	e := newEnv(t, envOptions{})
	// imported: an import would carry the subject into PRISM, so a PRISM
	// subscriber checks that nothing crossed.
	tests := []struct {
		name     string
		token    string
		who      auth.Principal
		kind     string // Publish or Subscription
		subject  string
		imported bool
	}{
		{"write on another namespace", "alice-token", alice, "Publish", subjects.Write("other", "put"), true},
		{"write without write", "bob-token", bob, "Publish", subjects.Write("demo", "put"), true},
		{"read without read", "bob-token", bob, "Publish", subjects.Read("other", "get"), true},
		{"admin without admin", "bob-token", bob, "Publish", subjects.Admin("ns.apply"), true},
		{"events subject", "alice-token", alice, "Publish", subjects.KeyValueEvent("demo", []byte("k1")), false},
		{"JetStream API", "alice-token", alice, "Publish", "$JS.API.STREAM.INFO.PRISM_DEMO", false},
		{"JetStream pull", "alice-token", alice, "Publish", subjects.ConsumerNext("PRISM_DEMO", "proj_sqlite"), false},
		{"subscribe pull without subscribe", "bob-token", bob, "Publish", subjects.Subscribe("demo", subjects.SubscribeNext), true},
		{"subscribe close without subscribe", "bob-token", bob, "Publish", subjects.Subscribe("demo", subjects.SubscribeClose), true},
		{"another principal's deliveries", "alice-token", alice, "Subscription", subjects.DeliverPrefix(bob.Name) + ".>", false},
		{"all deliveries", "alice-token", alice, "Subscription", subjects.AllDeliveries(), false},
		{"publish on own deliveries", "alice-token", alice, "Publish", subjects.Deliver(alice.Name, "sub_x"), false},
		{"JetStream consumer create", "root-token", root, "Publish", "$JS.API.CONSUMER.CREATE.PRISM_DEMO", false},
		{"auth callout subject", "alice-token", alice, "Publish", subjects.AuthCallout, false},
		{"all inboxes", "alice-token", alice, "Subscription", "_INBOX.>", false},
		{"another principal's inbox", "alice-token", alice, "Subscription", subjects.InboxPrefix(bob.Name) + ".>", false},
		{"changes without subscribe", "bob-token", bob, "Subscription", subjects.Changes("demo"), false},
		{"events without subscribe", "alice-token", alice, "Subscription", "prism.demo.events.>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.mustConnect(tt.token, tt.who.Name)
			// A PRISM subscriber proves nothing crossed: it would queue the
			// message before the reply of the allowed request below.
			var seen *nats.Subscription
			if tt.imported {
				var err error
				if seen, err = e.svc.SubscribeSync(tt.subject); err != nil {
					t.Fatal(err)
				}
				defer seen.Unsubscribe()
				if err := e.svc.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			switch tt.kind {
			case "Publish":
				if err := c.Publish(tt.subject, []byte("x")); err != nil {
					t.Fatal(err)
				}
			default:
				if _, err := c.SubscribeSync(tt.subject); err != nil {
					t.Fatal(err)
				}
			}
			wantViolation(t, c, tt.kind, tt.subject)
			// The connection is still usable for what it may do.
			e.respondInfo(subjects.Read("demo", ">"))
			if _, err := c.Request(subjects.Read("demo", "get"), nil, waitFor); err != nil {
				t.Fatalf("allowed read after the violation: %v", err)
			}
			if seen == nil {
				return
			}
			if n, _, _ := seen.Pending(); n != 0 {
				t.Fatalf("%d messages reached PRISM on %s", n, tt.subject)
			}
		})
	}
}

// TestCalloutServerAllows: each role's allowed requests reach PRISM and
// are answered.
func TestCalloutServerAllows(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, s := range []string{subjects.Write("*", ">"), subjects.Read("*", ">"), subjects.AllAdmin()} {
		e.respondInfo(s)
	}
	tests := []struct {
		name    string
		token   string
		who     auth.Principal
		subject string
	}{
		{"writer writes", "alice-token", alice, subjects.Write("demo", "put")},
		{"writer reads", "alice-token", alice, subjects.Read("demo", "get")},
		{"namespace admin", "alice-token", alice, subjects.Admin("ns.apply")},
		{"reader reads", "bob-token", bob, subjects.Read("demo", "scan")},
		{"other's writer", "bob-token", bob, subjects.Write("other", "put")},
		{"global admin on a namespace without policy", "root-token", root, subjects.Write("fresh", "put")},
		{"global admin reads", "root-token", root, subjects.Read("other", "get")},
		{"global admin", "root-token", root, subjects.Admin("ns.list")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.mustConnect(tt.token, tt.who.Name)
			reply, err := c.Request(tt.subject, []byte("x"), waitFor)
			if err != nil {
				t.Fatalf("request %s: %v", tt.subject, err)
			}
			var ri requestInfo
			if err := json.Unmarshal(reply.Data, &ri); err != nil || ri.User != auth.EncodePrincipal(tt.who) {
				t.Fatalf("request info %s (%v), want user %s", reply.Data, err, auth.EncodePrincipal(tt.who))
			}
		})
	}
}

// TestCalloutChanges: a principal with subscribe receives the namespace's
// change fan-out through the stream import.
func TestCalloutChanges(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.mustConnect("alice-token", alice.Name)
	sub, err := c.SubscribeSync(subjects.Changes("demo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	subject := "prism.demo.changes.kv.k1"
	// The import's interest reaches PRISM asynchronously: publish until
	// the first copy arrives.
	deadline := time.Now().Add(waitFor)
	for {
		if err := e.svc.Publish(subject, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(100 * time.Millisecond)
		if err == nil {
			if m.Subject != subject || string(m.Data) != "v1" {
				t.Fatalf("got %s %q, want %s v1", m.Subject, m.Data, subject)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no change message: %v", err)
		}
	}
}

// TestCalloutHeaderSpoofing: a client that sets Nats-Request-Info itself
// gets it replaced by the server's.
func TestCalloutHeaderSpoofing(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.respondInfo(subjects.Write("demo", ">"))
	c := e.mustConnect("alice-token", alice.Name)
	for _, forged := range []string{
		`{"acc":"APP","user":` + strconvQuote(auth.EncodePrincipal(root)) + `}`,
		`{"acc":"PRISM"}`,
		`not json`,
	} {
		m := nats.NewMsg(subjects.Write("demo", "put"))
		m.Header.Set(subjects.HeaderRequestInfo, forged)
		m.Header.Add(subjects.HeaderRequestInfo, forged)
		reply, err := c.RequestMsg(m, waitFor)
		if err != nil {
			t.Fatal(err)
		}
		var ri requestInfo
		if err := json.Unmarshal(reply.Data, &ri); err != nil {
			t.Fatalf("forged %s: responder saw %q: %v", forged, reply.Data, err)
		}
		if ri.Account != subjects.AppAccount || ri.User != auth.EncodePrincipal(alice) {
			t.Fatalf("forged %s: responder saw %+v, want alice in APP", forged, ri)
		}
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestCalloutNothingGranted: a principal no policy names may publish
// nothing at all (an empty allow list would mean everything to the
// server).
func TestCalloutNothingGranted(t *testing.T) {
	e := newEnv(t, envOptions{})
	nobody := auth.Principal{Name: "nobody", Via: auth.ViaOIDC}
	e.authn.set("nobody-token", cred{p: nobody})
	c := e.mustConnect("nobody-token", nobody.Name)
	for _, s := range []string{"anything.at.all", subjects.Read("demo", "get")} {
		if err := c.Publish(s, nil); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, c, "Publish", s)
	}
}

func TestCalloutLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := e.callout.Start(); err == nil {
		t.Fatal("a second Start succeeded")
	}
	// A second Callout on the same subject shares the queue group.
	second, err := auth.NewCallout(e.svc, auth.CalloutConfig{
		Issuer: e.issuer, Authenticator: e.authn, Policies: testPolicies, Registerer: e.reg,
	})
	if err != nil {
		t.Fatalf("a second Callout with the same registry: %v", err)
	}
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		e.mustConnect("alice-token", alice.Name).Close()
	}
	if got := e.waitCount("allowed", 4); got != 4 {
		t.Fatalf("allowed = %v, want 4 (each request answered once)", got)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if err := second.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := second.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	if _, err := auth.NewCallout(nil, auth.CalloutConfig{}); err == nil {
		t.Fatal("NewCallout without a connection succeeded")
	}
}
