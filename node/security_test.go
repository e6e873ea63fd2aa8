package node

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestOpenModeStaysOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       Config
		wantErr bool
	}{
		{"embedded on loopback", Config{NATSListen: "127.0.0.1:4222"}, false},
		{"embedded on localhost", Config{NATSListen: "localhost:4222"}, false},
		{"embedded on ::1", Config{NATSListen: "[::1]:4222"}, false},
		{"embedded on every interface", Config{NATSListen: "0.0.0.0:4222"}, true},
		{"embedded on a LAN address", Config{NATSListen: "10.1.2.3:4222"}, true},
		{"HTTP on every interface", Config{NATSListen: "127.0.0.1:0", HTTPListen: ":8080"}, true},
		{"HTTP on loopback", Config{NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:8080"}, false},
		{"external on loopback", Config{NATSURL: "nats://127.0.0.1:4222,nats://localhost:4223"}, false},
		{"external dialled at 0.0.0.0", Config{NATSURL: "nats://0.0.0.0:4222"}, false},
		{"external elsewhere", Config{NATSURL: "nats://nats.example.com:4222"}, true},
		{"external elsewhere, one of several", Config{NATSURL: "nats://127.0.0.1:4222,tls://10.0.0.5:4222"}, true},
		{"external elsewhere with credentials", Config{NATSURL: "tls://nats.example.com:4222", NATSOptions: []nats.Option{nats.Token("t")}}, false},
		{"everything open with authentication on", Config{NATSListen: "0.0.0.0:4222", HTTPListen: ":8080", AuthConfig: "auth.yaml"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.DataDir = t.TempDir()
			err := tc.c.checkOpen()
			if (err != nil) != tc.wantErr || err != nil && !errors.Is(err, errOpen) {
				t.Fatalf("checkOpen = %v, want error %v (errOpen)", err, tc.wantErr)
			}
		})
	}
}

func TestSecurityPoliciesFollowTheRegistry(t *testing.T) {
	s := newSecurity([]string{"group:admins"})
	admin := principal("root", "admins")
	app := principal("app")
	if err := s.Authorize(app, "orders", "write"); err == nil {
		t.Fatal("app may write orders before any policy")
	}
	if err := s.Authorize(admin, "orders", "write"); err != nil {
		t.Fatalf("a global admin is refused: %v", err)
	}
	s.setPolicy("orders", policyOf("write", "app"))
	if err := s.Authorize(app, "orders", "write"); err != nil {
		t.Fatalf("app may not write orders after its policy: %v", err)
	}
	before := s.Policies()
	s.removePolicy("orders")
	if err := s.Authorize(app, "orders", "write"); err == nil {
		t.Fatal("app may write a deleted namespace")
	}
	if _, ok := before.Namespaces["orders"]; !ok {
		t.Fatal("a view taken before a change changed with it")
	}
}

func TestIdentifyCachesOnlyWhatTheServerStamped(t *testing.T) {
	s := newSecurity(nil)
	stamp := func(user string) nats.Header {
		h := nats.Header{}
		h.Set("Nats-Request-Info", `{"acc":"APP","user":`+user+`}`)
		return h
	}
	alice := stamp(`"{\"n\":\"alice\",\"v\":\"tls\"}"`)
	for range 2 { // decoded, then cached
		p, err := s.Identify(alice)
		if err != nil || p.Name != "alice" {
			t.Fatalf("Identify = %+v, %v; want alice", p, err)
		}
	}
	if p, err := s.Identify(stamp(`"{\"n\":\"bob\",\"v\":\"tls\"}"`)); err != nil || p.Name != "bob" {
		t.Fatalf("a second identity: %+v, %v; want bob", p, err)
	}
	if _, err := s.Identify(nats.Header{}); err != nil {
		t.Fatalf("no header (the PRISM account): %v", err)
	}
	other := nats.Header{}
	other.Set("Nats-Request-Info", `{"acc":"OTHER","user":"alice"}`)
	for range 2 { // a refusal is not cached as a success
		if p, err := s.Identify(other); err == nil {
			t.Fatalf("another account's request was attributed to %+v", p)
		}
	}
}
