// Package natsconn is how every prism command connects to NATS: one set
// of flags (--nats-url, --creds, --nkey, --tls-cert, --tls-key, --tls-ca,
// --token, --inbox-prefix) with the standard NATS_* environment as their
// defaults, turned into nats.go options, and connect errors that say what
// to fix (which file, which credential the server refused).
//
// In a secured deployment each principal may subscribe only under its own
// reply prefix (subjects.InboxPrefix); Options derives that prefix from
// the credential it presents, so a command needs no --inbox-prefix.
package natsconn

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"
)

// Environment variables the flags default to (the nats CLI's names).
const (
	EnvURL         = "NATS_URL"
	EnvCreds       = "NATS_CREDS"
	EnvNKey        = "NATS_NKEY"
	EnvTLSCert     = "NATS_CERT"
	EnvTLSKey      = "NATS_KEY"
	EnvTLSCA       = "NATS_CA"
	EnvToken       = "NATS_TOKEN"
	EnvInboxPrefix = "NATS_INBOX_PREFIX"
)

// Options says where and as whom to connect. The zero value connects
// anonymously to nats.DefaultURL. Options holds a token: it never prints
// it (String, GoString) and no error of this package carries it.
type Options struct {
	// URL is the server URL, or a comma-separated list of them.
	URL string
	// Creds is a credentials file: a user JWT and its nkey seed.
	Creds string
	// NKey is a file holding an nkey seed (SU...).
	NKey string
	// TLSCert and TLSKey are a client certificate and its private key,
	// PEM files; TLSCA is a PEM file of the CAs that sign the server's
	// certificate (default: the system's).
	TLSCert, TLSKey, TLSCA string
	// Token is a server token or an OIDC bearer JWT, sent as the connect
	// token.
	Token string
	// InboxPrefix is the prefix of reply subjects. Empty: derived from the
	// credential's principal (see Principal), else nats.go's _INBOX.
	InboxPrefix string
	// Name is the connection name the server shows (e.g. prism-replay).
	Name string
	// Timeout bounds the connect; 0 is nats.go's default (2s).
	Timeout time.Duration

	// fs is the flag set Register filled, to tell a flag from its
	// environment default in messages.
	fs *pflag.FlagSet
}

// flagEnv pairs each flag Register adds with its environment variable.
var flagEnv = []struct{ flag, env string }{
	{"nats-url", EnvURL}, {"creds", EnvCreds}, {"nkey", EnvNKey}, {"tls-cert", EnvTLSCert},
	{"tls-key", EnvTLSKey}, {"tls-ca", EnvTLSCA}, {"token", EnvToken}, {"inbox-prefix", EnvInboxPrefix},
}

// Register adds --nats-url, described by what (e.g. "NATS URL of the
// running Prism"), and the credential flags of RegisterCredentials to fs.
// --nats-url defaults to $NATS_URL, else nats.DefaultURL; --help shows
// that default once, with any password in it masked.
func (o *Options) Register(fs *pflag.FlagSet, what string) {
	def := os.Getenv(EnvURL)
	if def == "" {
		def = nats.DefaultURL
	}
	fs.StringVar(&o.URL, "nats-url", def, what+" ($NATS_URL when set)")
	fs.Lookup("nats-url").DefValue = Redact(def)
	o.RegisterCredentials(fs)
}

// RegisterCredentials adds the flags that say as whom to connect, each
// defaulting to its NATS_* variable: --creds, --nkey, --tls-cert,
// --tls-key, --tls-ca, --token, --inbox-prefix. Defaults are read now but
// never shown in --help (a token is a secret). Use it where the command
// has its own --nats-url (prism serve: empty embeds a server).
func (o *Options) RegisterCredentials(fs *pflag.FlagSet) {
	o.fs = fs
	for _, f := range []struct {
		p          *string
		name, env  string
		usage, def string
	}{
		{&o.Creds, "creds", EnvCreds, "NATS credentials file (user JWT and nkey seed)", ""},
		{&o.NKey, "nkey", EnvNKey, "file holding an nkey seed to authenticate with", ""},
		{&o.TLSCert, "tls-cert", EnvTLSCert, "client certificate (PEM) for TLS to NATS", ""},
		{&o.TLSKey, "tls-key", EnvTLSKey, "private key (PEM) of --tls-cert", ""},
		{&o.TLSCA, "tls-ca", EnvTLSCA, "CA certificates (PEM) that sign the NATS server's certificate", "; else the system's"},
		{&o.Token, "token", EnvToken, "token or OIDC bearer JWT to connect with", "; never printed"},
		{&o.InboxPrefix, "inbox-prefix", EnvInboxPrefix, "prefix of reply subjects", "; else derived from the credential's principal"},
	} {
		fs.StringVar(f.p, f.name, "", fmt.Sprintf("%s (default $%s%s)", f.usage, f.env, f.def))
		*f.p = os.Getenv(f.env)
	}
}

// RegisterOptional adds --nats-url without a default, described by
// usage, and the credential flags of RegisterCredentials: for a command
// that without a URL runs a server of its own (prism serve, prism bench).
// See Optional.
func (o *Options) RegisterOptional(fs *pflag.FlagSet, usage string) {
	fs.StringVar(&o.URL, "nats-url", "", usage)
	o.RegisterCredentials(fs)
}

// Optional is NATSOptions for a URL, and nil without one. Then a
// credential flag given on the command line is an error saying it applies
// to --nats-url only and what the command does instead (e.g. "prism serve
// embeds its own NATS server"); the NATS_* variables are ignored.
func (o Options) Optional(instead string) ([]nats.Option, error) {
	if o.URL != "" {
		return o.NATSOptions()
	}
	if set := o.explicitCredentials(); len(set) > 0 {
		return nil, fmt.Errorf("%s applies to the server of --nats-url; without it %s", set[0], instead)
	}
	return nil, nil
}

// explicitCredentials returns the credential flags set on the command
// line (not from the environment).
func (o *Options) explicitCredentials() []string {
	var set []string
	for _, f := range flagEnv[1:] {
		if o.fs != nil && o.fs.Changed(f.flag) {
			set = append(set, "--"+f.flag)
		}
	}
	return set
}

// source names where a setting came from: its flag, its environment
// variable, or (Options built in code) the flag alone.
func (o Options) source(flag string) string {
	if o.fs != nil && !o.fs.Changed(flag) {
		for _, f := range flagEnv {
			if f.flag == flag && os.Getenv(f.env) != "" {
				return "$" + f.env
			}
		}
	}
	return "--" + flag
}

// String describes o without its token and with any password in the URL
// masked, so that %v of a command's flags leaks no secret.
func (o Options) String() string {
	token := ""
	if o.Token != "" {
		token = "[redacted]"
	}
	return fmt.Sprintf("natsconn.Options{URL:%q Creds:%q NKey:%q TLSCert:%q TLSKey:%q TLSCA:%q Token:%q InboxPrefix:%q Name:%q Timeout:%v}",
		Redact(o.URL), o.Creds, o.NKey, o.TLSCert, o.TLSKey, o.TLSCA, token, o.InboxPrefix, o.Name, o.Timeout)
}

// GoString is String, for %#v.
func (o Options) GoString() string { return o.String() }

// Redact returns the server URL list u with the user information of each
// URL (a password, or a token given as the user) replaced by "redacted".
func Redact(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		pu, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "redacted"
			}
			continue
		}
		if pu.User != nil {
			pu.User = url.User("redacted")
			parts[i] = pu.String()
		}
	}
	return strings.Join(parts, ",")
}
