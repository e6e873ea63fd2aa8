package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/subjects"
)

// TestCalloutRefusesAtConnect: credentials the callout does not admit
// fail nats.Connect with an authorization violation, and are counted.
func TestCalloutRefusesAtConnect(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.authn.set("expired-token", cred{p: bob, exp: time.Now().Add(-time.Minute)})
	e.authn.set("service-token", cred{p: auth.ServicePrincipal})
	e.authn.set("anonymous-token", cred{p: auth.Anonymous})
	e.authn.set("invalid-token", cred{p: auth.Principal{Name: " padded", Via: auth.ViaOIDC}})
	tests := []struct {
		name   string
		token  string
		result string // the callout's metric label
	}{
		{"unknown token", "not-a-token", "denied"},
		{"no credential", "", "denied"},
		{"expired credential", "expired-token", "denied"},
		{"service principal from an authenticator", "service-token", "error"},
		{"development principal from an authenticator", "anonymous-token", "error"},
		{"invalid principal", "invalid-token", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.calloutCount(tt.result)
			opts := []nats.Option{nats.NoReconnect()}
			var err error
			if tt.token == "" {
				_, err = nats.Connect(e.srv.ClientURL(), opts...)
			} else {
				_, err = e.connect(tt.token, "x", opts...)
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("connect: %v, want %v", err, nats.ErrAuthorization)
			}
			if got := e.waitCount(tt.result, before+1); got != before+1 {
				t.Fatalf("prism_auth_callout_total{result=%q} = %v, want %v", tt.result, got, before+1)
			}
		})
	}
	if got := e.calloutCount("allowed"); got != 0 {
		t.Fatalf("allowed = %v, want 0", got)
	}
}

// TestCalloutExpiry: the server closes a connection when its credential
// expires (the user JWT carries the credential's expiry).
func TestCalloutExpiry(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.authn.set("short-token", cred{p: alice, exp: time.Now().Add(2 * time.Second)})
	closed := make(chan struct{})
	c := e.mustConnect("short-token", alice.Name, nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	e.respondInfo(subjects.Write("demo", ">"))
	if _, err := c.Request(subjects.Write("demo", "put"), nil, waitFor); err != nil {
		t.Fatalf("request before expiry: %v", err)
	}
	expired, done := false, false
	for deadline := time.After(waitFor); !done; {
		select {
		case err := <-c.errs:
			expired = expired || errors.Is(err, nats.ErrAuthExpired)
		case <-closed:
			done = true
		case <-deadline:
			t.Fatal("the connection outlived its credential")
		}
	}
	// The server's error may still be in the handler queue when the
	// connection reports closed.
	select {
	case err := <-c.errs:
		expired = expired || errors.Is(err, nats.ErrAuthExpired)
	default:
	}
	if !expired {
		t.Fatalf("closed without %v", nats.ErrAuthExpired)
	}
}

// TestCalloutPolicyChange: permissions are fixed when a client connects;
// a new connection gets the policies in force then.
func TestCalloutPolicyChange(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.respondInfo(subjects.Write("demo", ">"))
	before := e.mustConnect("bob-token", bob.Name)

	ps := testPolicies()
	pol := ps.Namespaces["demo"]
	pol.Write = append(pol.Write, bob.Name)
	ps.Namespaces["demo"] = pol
	e.policies.Store(&ps)

	if err := before.Publish(subjects.Write("demo", "put"), nil); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, before, "Publish", subjects.Write("demo", "put"))
	after := e.mustConnect("bob-token", bob.Name)
	if _, err := after.Request(subjects.Write("demo", "put"), nil, waitFor); err != nil {
		t.Fatalf("write after the grant, on a new connection: %v", err)
	}
}

// BenchmarkCalloutConnect measures a whole connection admitted by the
// callout: the server's request, the callout's answer, the handshake.
func BenchmarkCalloutConnect(b *testing.B) {
	e := newEnv(b, envOptions{xkey: true})
	url := e.srv.ClientURL()
	b.ReportAllocs()
	for b.Loop() {
		nc, err := nats.Connect(url, nats.Token("alice-token"), nats.NoReconnect())
		if err != nil {
			b.Fatal(err)
		}
		nc.Close()
	}
	b.StopTimer()
	if got := e.calloutCount("allowed"); got < float64(b.N) {
		b.Fatalf("allowed %v < %d connections", got, b.N)
	}
}
