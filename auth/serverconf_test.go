package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/subjects"
)

func validServerConfig(t *testing.T) auth.ServerConfig {
	t.Helper()
	_, issuer := mustKey(t, nkeys.CreateAccount)
	_, svc1 := mustKey(t, nkeys.CreateUser)
	_, svc2 := mustKey(t, nkeys.CreateUser)
	_, x := mustKey(t, nkeys.CreateCurveKeys)
	return auth.ServerConfig{
		Listen: "127.0.0.1:-1", StoreDir: t.TempDir(),
		IssuerPub: issuer, ServiceNKeys: []string{svc1, svc2}, XKeyPub: x,
	}
}

func TestServerConfigValidate(t *testing.T) {
	_, user := mustKey(t, nkeys.CreateUser)
	_, account := mustKey(t, nkeys.CreateAccount)
	tests := []struct {
		name    string
		edit    func(*auth.ServerConfig)
		wantErr error
		wantMsg string
	}{
		{"valid", func(*auth.ServerConfig) {}, nil, ""},
		{"server name with a space", func(c *auth.ServerConfig) { c.ServerName = "a b" }, auth.ErrInvalidServerConfig, "ServerName"},
		{"no issuer", func(c *auth.ServerConfig) { c.IssuerPub = "" }, auth.ErrInvalidServerConfig, "IssuerPub"},
		{"user key as issuer", func(c *auth.ServerConfig) { c.IssuerPub = user }, auth.ErrInvalidServerConfig, "IssuerPub"},
		{"no service keys", func(c *auth.ServerConfig) { c.ServiceNKeys = nil }, auth.ErrInvalidServerConfig, "ServiceNKeys"},
		{"account key as service key", func(c *auth.ServerConfig) { c.ServiceNKeys = []string{account} }, auth.ErrInvalidServerConfig, "ServiceNKeys[0]"},
		{"bad xkey", func(c *auth.ServerConfig) { c.XKeyPub = user }, auth.ErrInvalidServerConfig, "XKeyPub"},
		{"no store dir", func(c *auth.ServerConfig) { c.StoreDir = "" }, auth.ErrInvalidServerConfig, "StoreDir"},
		{"bad listen", func(c *auth.ServerConfig) { c.Listen = "4222" }, auth.ErrInvalidServerConfig, "Listen"},
		{"bad leaf listen", func(c *auth.ServerConfig) { c.LeafListen = "nope" }, auth.ErrInvalidServerConfig, "LeafListen"},
		{"TLS without key", func(c *auth.ServerConfig) { c.TLS = &auth.TLSFiles{Cert: "c.pem"} }, auth.ErrInvalidServerConfig, "TLS"},
		{"verify without CA", func(c *auth.ServerConfig) { c.TLS = &auth.TLSFiles{Cert: "c", Key: "k", Verify: true} }, auth.ErrInvalidServerConfig, "CA"},
		{"cluster without name", func(c *auth.ServerConfig) { c.Cluster = &auth.ClusterConfig{Listen: "127.0.0.1:6222"} }, auth.ErrInvalidServerConfig, "Cluster.Name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validServerConfig(t)
			tt.edit(&c)
			err := c.Validate()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err %q does not name %s", err, tt.wantMsg)
			}
			if err := c.Apply(&server.Options{}); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestServerConfigApply: the rendered text configures the accounts,
// imports, callout and JetStream as documented.
func TestServerConfigApply(t *testing.T) {
	c := validServerConfig(t)
	c.SyncAlways = true
	c.MonitorListen = "127.0.0.1:8222"
	c.Cluster = &auth.ClusterConfig{Name: "prism", Listen: "127.0.0.1:6222", Routes: []string{"nats-route://10.0.0.2:6222"}}
	o := &server.Options{}
	if err := c.Apply(o); err != nil {
		t.Fatalf("%v\n%s", err, c.Render())
	}
	ac := o.AuthCallout
	if ac == nil || ac.Issuer != c.IssuerPub || ac.Account != subjects.PrismAccount || !slices.Equal(ac.AuthUsers, c.ServiceNKeys) || ac.XKey != c.XKeyPub || len(ac.AllowedAccounts) != 0 {
		t.Fatalf("auth callout = %+v", ac)
	}
	if o.SystemAccount != auth.SystemAccount || !o.JetStream || o.StoreDir != c.StoreDir || !o.SyncAlways {
		t.Fatalf("system account %q, jetstream %t %q sync %t", o.SystemAccount, o.JetStream, o.StoreDir, o.SyncAlways)
	}
	if o.HTTPHost != "127.0.0.1" || o.HTTPPort != 8222 || o.Cluster.Name != "prism" || o.Cluster.Port != 6222 || len(o.Routes) != 1 {
		t.Fatalf("monitor %s:%d cluster %+v routes %v", o.HTTPHost, o.HTTPPort, o.Cluster, o.Routes)
	}
	var users []string
	for _, u := range o.Nkeys {
		if u.Account == nil || u.Account.Name != subjects.PrismAccount {
			t.Fatalf("nkey user %s not in PRISM", u.Nkey)
		}
		users = append(users, u.Nkey)
	}
	if !slices.Equal(users, c.ServiceNKeys) {
		t.Fatalf("PRISM users %v, want %v", users, c.ServiceNKeys)
	}
	text := c.Render()
	for _, want := range []string{
		`{ service: "prism.*.write.>" }`, `{ service: "prism.*.read.>" }`, `{ service: "prism.$admin.>" }`, `{ service: "prism.$owner.verify.*" }`, `{ stream: "prism.*.changes.>" }`,
		`{ service: { account: PRISM, subject: "prism.$admin.>" }, share: true }`, `{ stream: { account: PRISM, subject: "prism.*.changes.>" } }`,
		`{ service: "prism.*.subscribe.>" }`, `{ service: { account: PRISM, subject: "prism.*.subscribe.>" }, share: true }`,
		`{ stream: "prism.$deliver.>" }`, `{ stream: { account: PRISM, subject: "prism.$deliver.>" } }`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("rendered config lacks %s:\n%s", want, text)
		}
	}
	if strings.Count(text, "}, share: true }") != 5 || strings.Count(text, "jetstream: enabled") != 1 || strings.Contains(text, "$JS.API") {
		t.Fatalf("want 5 shared service imports and JetStream in one account:\n%s", text)
	}
}

// TestServerConfigQuoting: no field injects configuration; values come
// back from the parser exactly.
func TestServerConfigQuoting(t *testing.T) {
	c := validServerConfig(t)
	c.StoreDir = c.StoreDir + `/we"ird\dir$HOME` + "\t\"\nauthorization { users: [ {user: a, password: b} ] }\n#"
	o := &server.Options{}
	if err := c.Apply(o); err != nil {
		t.Fatalf("%v\n%s", err, c.Render())
	}
	if o.StoreDir != c.StoreDir {
		t.Fatalf("store dir %q, want %q", o.StoreDir, c.StoreDir)
	}
	if len(o.Users) != 0 || o.AuthCallout == nil {
		t.Fatalf("users %v callout %v: the name injected configuration", o.Users, o.AuthCallout)
	}
}

// TestServerConfigJetStream: JetStream in PRISM only.
func TestServerConfigJetStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	for name, want := range map[string]bool{subjects.PrismAccount: true, subjects.AppAccount: false} {
		acc, err := e.srv.LookupAccount(name)
		if err != nil {
			t.Fatal(err)
		}
		if acc.JetStreamEnabled() != want {
			t.Fatalf("account %s JetStream %t, want %t", name, !want, want)
		}
	}
	if _, err := e.srv.LookupAccount(auth.SystemAccount); err != nil || e.srv.SystemAccount().Name != auth.SystemAccount {
		t.Fatalf("system account: %v", err)
	}
	js, err := jetstream.New(e.svc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.Stream("demo"), Subjects: subjects.StreamSubjects("demo")}); err != nil {
		t.Fatalf("a PRISM user creates a stream: %v", err)
	}
	if _, err := e.svc.Request(subjects.KeyValueEvent("demo", []byte("k")), []byte("v"), waitFor); err != nil {
		t.Fatalf("a PRISM user publishes an event: %v", err)
	}
}

// TestServerConfigServiceUsers: a PRISM nkey user connects without the
// callout; an unknown nkey goes to the callout, which refuses it.
func TestServerConfigServiceUsers(t *testing.T) {
	e := newEnv(t, envOptions{})
	asked := len(e.authn.seen)
	pub, err := e.svcKey.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.srv.ClientURL(), nats.Nkey(pub, e.svcKey.Sign))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	stranger, strangerPub := mustKey(t, nkeys.CreateUser)
	if _, err := nats.Connect(e.srv.ClientURL(), nats.Nkey(strangerPub, stranger.Sign)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("unknown nkey: %v, want %v", err, nats.ErrAuthorization)
	}
	e.authn.mu.Lock()
	defer e.authn.mu.Unlock()
	if got := len(e.authn.seen) - asked; got != 1 {
		t.Fatalf("the callout was asked %d times, want once (the unknown nkey)", got)
	}
}
