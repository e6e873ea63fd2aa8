package authn_test

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/status"
)

func TestConfigValidate(t *testing.T) {
	_, user := newUser(t)
	_, account := newAccount(t)
	oidc := func(edit func(*authn.OIDCConfig)) authn.Config {
		o := authn.OIDCConfig{Issuer: "https://idp.example.com/realms/prism", Audience: "prism"}
		edit(&o)
		return authn.Config{OIDC: []authn.OIDCConfig{o}}
	}
	tests := []struct {
		name      string
		cfg       authn.Config
		wantField string // "" for a valid configuration
	}{
		{name: "oidc", cfg: oidc(func(*authn.OIDCConfig) {})},
		{name: "oidc on loopback http", cfg: oidc(func(o *authn.OIDCConfig) { o.Issuer = "http://127.0.0.1:8080/realms/x" })},
		{name: "nkeys, tls and creds", cfg: authn.Config{
			TLS:   authn.CertConfig{CAFile: "ca.pem", Groups: map[string][]string{"alice": {"admins"}}},
			NKeys: []authn.NKeyUser{{Name: "svc", NKey: user}},
			Creds: authn.CredsConfig{IssuerPub: account, Revoked: []string{user}},
		}},
		{name: "nothing", cfg: authn.Config{}, wantField: "authn"},
		{name: "no issuer", cfg: oidc(func(o *authn.OIDCConfig) { o.Issuer = "" }), wantField: "oidc[0].issuer"},
		{name: "http issuer", cfg: oidc(func(o *authn.OIDCConfig) { o.Issuer = "http://idp.example.com" }), wantField: "oidc[0].issuer"},
		{name: "relative issuer", cfg: oidc(func(o *authn.OIDCConfig) { o.Issuer = "idp.example.com" }), wantField: "oidc[0].issuer"},
		{name: "issuer with query", cfg: oidc(func(o *authn.OIDCConfig) { o.Issuer += "?x=1" }), wantField: "oidc[0].issuer"},
		{name: "no audience", cfg: oidc(func(o *authn.OIDCConfig) { o.Audience = "" }), wantField: "oidc[0].audience"},
		{name: "ftp jwks", cfg: oidc(func(o *authn.OIDCConfig) { o.JWKSURL = "ftp://idp/jwks" }), wantField: "oidc[0].jwks_url"},
		{name: "spaced claim", cfg: oidc(func(o *authn.OIDCConfig) { o.GroupsClaim = " groups" }), wantField: "oidc[0].groups_claim"},
		{name: "duplicate issuer", cfg: authn.Config{OIDC: []authn.OIDCConfig{
			{Issuer: "https://a.example", Audience: "p"}, {Issuer: "https://a.example", Audience: "q"},
		}}, wantField: "oidc[1].issuer"},
		{name: "tls groups without CA", cfg: authn.Config{NKeys: []authn.NKeyUser{{Name: "svc", NKey: user}}, TLS: authn.CertConfig{Groups: map[string][]string{"a": nil}}}, wantField: "tls.groups"},
		{name: "nkey without name", cfg: authn.Config{NKeys: []authn.NKeyUser{{NKey: user}}}, wantField: "nkeys[0].name"},
		{name: "nkey name posing as group", cfg: authn.Config{NKeys: []authn.NKeyUser{{Name: "group:x", NKey: user}}}, wantField: "nkeys[0].name"},
		{name: "nkey not a user key", cfg: authn.Config{NKeys: []authn.NKeyUser{{Name: "svc", NKey: account}}}, wantField: "nkeys[0].nkey"},
		{name: "nkey listed twice", cfg: authn.Config{NKeys: []authn.NKeyUser{{Name: "a", NKey: user}, {Name: "b", NKey: user}}}, wantField: "nkeys[1].nkey"},
		{name: "nkey bad group", cfg: authn.Config{NKeys: []authn.NKeyUser{{Name: "a", NKey: user, Groups: []string{""}}}}, wantField: "nkeys[0].groups"},
		{name: "creds issuer a user key", cfg: authn.Config{Creds: authn.CredsConfig{IssuerPub: user}}, wantField: "creds.issuer"},
		{name: "revoked without issuer", cfg: authn.Config{NKeys: []authn.NKeyUser{{Name: "svc", NKey: user}}, Creds: authn.CredsConfig{Revoked: []string{user}}}, wantField: "creds.revoked"},
		{name: "revoked not a user key", cfg: authn.Config{Creds: authn.CredsConfig{IssuerPub: account, Revoked: []string{account}}}, wantField: "creds.revoked[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, authn.ErrInvalidConfig) || !errors.Is(err, status.ErrInvalidArgument) {
				t.Fatalf("Validate error = %v, want INVALID_ARGUMENT wrapping ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantField+":") {
				t.Fatalf("Validate error %q does not name field %s", err, tt.wantField)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	_, user := newUser(t)
	_, account := newAccount(t)
	src := `
oidc:
  - issuer: https://idp.example.com/realms/prism
    audience: prism
    jwks_url: https://idp.example.com/realms/prism/certs
    username_claim: preferred_username
    groups_claim: realm_access.roles
    ca_file: /etc/prism/idp-ca.pem
tls:
  ca_file: /etc/prism/ca.pem
  groups:
    alice@example.com: [admins]
nkeys:
  - name: projector
    nkey: ` + user + `
    groups: [services]
creds:
  issuer: ` + account + `
  revoked: [` + user + `]
`
	var cfg authn.Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o := cfg.OIDC[0]
	if o.Issuer != "https://idp.example.com/realms/prism" || o.Audience != "prism" || o.JWKSURL == "" ||
		o.UsernameClaim != "preferred_username" || o.GroupsClaim != "realm_access.roles" || o.CAFile != "/etc/prism/idp-ca.pem" {
		t.Fatalf("oidc = %+v", o)
	}
	if cfg.TLS.CAFile != "/etc/prism/ca.pem" || cfg.TLS.Groups["alice@example.com"][0] != "admins" {
		t.Fatalf("tls = %+v", cfg.TLS)
	}
	if cfg.NKeys[0].Name != "projector" || cfg.NKeys[0].NKey != user || cfg.NKeys[0].Groups[0] != "services" {
		t.Fatalf("nkeys = %+v", cfg.NKeys)
	}
	if cfg.Creds.IssuerPub != account || cfg.Creds.Revoked[0] != user {
		t.Fatalf("creds = %+v", cfg.Creds)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back authn.Config
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.Creds.IssuerPub != account || back.OIDC[0].GroupsClaim != "realm_access.roles" || len(back.NKeys) != 1 {
		t.Fatalf("round trip lost fields: %s", out)
	}
}
