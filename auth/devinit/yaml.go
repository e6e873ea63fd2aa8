package devinit

import (
	"bytes"
	"encoding/json"
	"text/template"
	"time"

	"github.com/prism-data/prism/auth/authn"
)

// File is the layout of the auth.yaml Init writes. Paths in it are
// absolute.
type File struct {
	// Authn is the authenticators' configuration (authn.New).
	Authn authn.Config `yaml:"authn"`
	// Admins are the principals ("name") and groups ("group:<g>") with
	// admin rights on every namespace.
	Admins []string `yaml:"admins"`
	// Callout is the auth callout's signing identity.
	Callout CalloutFile `yaml:"callout"`
	// UserIssuer signs the users' creds files; its public key is
	// Authn.Creds.IssuerPub.
	UserIssuer KeyFile `yaml:"user_issuer"`
	// Service is the nkey Prism's own processes connect with.
	Service KeyFile `yaml:"service"`
	// ServerTLS is the certificate of the NATS and HTTP listeners.
	ServerTLS ServerTLSFile `yaml:"server_tls"`
}

// CalloutFile names the account nkey that signs the callout's responses.
type CalloutFile struct {
	// IssuerSeedFile holds the account seed (issuer.nk).
	IssuerSeedFile string `yaml:"issuer_seed_file"`
	// Issuer is its public key: the NATS server's auth_callout issuer.
	Issuer string `yaml:"issuer"`
}

// KeyFile names an nkey seed file and its public key.
type KeyFile struct {
	SeedFile string `yaml:"seed_file"`
	Public   string `yaml:"public"`
}

// ServerTLSFile names the listeners' certificate, key and the CA client
// certificates are verified against.
type ServerTLSFile struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

var authTemplate = template.Must(template.New("auth.yaml").Funcs(template.FuncMap{"q": quote}).Parse(
	`# Prism authentication, written by prism auth init on {{.Date}}.
# DEVELOPMENT material: a CA and keys made on this machine. For production
# bring your own CA, user issuer and OIDC provider (see docs/security.md).
# Keep this directory private: the .nk, -key.pem and .creds files are secrets.

# Who may connect, and as whom (package auth/authn).
authn:
  # Client certificates issued by the development CA; the name is the
  # certificate's first email SAN, else its first URI SAN, else its CN.
  tls:
    ca_file: {{q .R.CACert}}
    # groups of a certificate name
    groups:
{{- range .R.Users}}{{if .Groups}}
      {{q .Name}}: [{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{q $g}}{{end}}]{{end}}{{end}}
  # .creds files (user JWTs) signed by the user issuer: the name is the
  # JWT's name, the groups its tags group:<g>. The NATS server hands user
  # JWTs to the callout only in operator mode; without an operator it
  # discards them: connect with the user's .nk or certificate instead.
  creds:
    issuer: {{q .R.UserIssuerPub}}
    # user public keys (U...) whose creds are refused:
    revoked: []
  # Users and services that connect with an nkey (users/<name>.nk):
  nkeys:
{{- range .R.Users}}
    - name: {{q .Name}}
      nkey: {{q .NKeyPub}}{{if .Groups}}
      groups: [{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{q $g}}{{end}}]{{end}}{{end}}
  # OAuth2/OIDC issuers whose bearer JWTs clients pass as their NATS token:
  # oidc:
  #   - issuer: https://idp.example.com/realms/prism
  #     audience: prism
  #     groups_claim: groups

# Principals and groups (group:<g>) with admin rights on every namespace.
admins: [group:admins]

# The auth callout signs the user JWTs it returns to the NATS server with
# this account key; the server's auth_callout issuer is its public key.
callout:
  issuer_seed_file: {{q .R.IssuerSeed}}
  issuer: {{q .R.IssuerPub}}

# Signs the users' creds files (its public key is authn.creds.issuer).
user_issuer:
  seed_file: {{q .R.UserIssuerSeed}}
  public: {{q .R.UserIssuerPub}}

# Prism's own processes connect with this nkey.
service:
  seed_file: {{q .R.ServiceSeed}}
  public: {{q .R.ServicePub}}

# TLS of the NATS and HTTP listeners (localhost, 127.0.0.1, ::1{{range .Hosts}}, {{.}}{{end}});
# client certificates are verified against ca_file.
server_tls:
  cert_file: {{q .R.ServerCert}}
  key_file: {{q .R.ServerKey}}
  ca_file: {{q .R.CACert}}
`))

// quote makes s a YAML double-quoted scalar (JSON strings are).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func authYAML(r *Result, opts Options) ([]byte, error) {
	var buf bytes.Buffer
	err := authTemplate.Execute(&buf, struct {
		R     *Result
		Date  string
		Hosts []string
	}{r, opts.Now().UTC().Format(time.RFC3339), opts.Hosts})
	return buf.Bytes(), err
}
