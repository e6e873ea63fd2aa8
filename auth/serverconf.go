package auth

import (
	"fmt"
	"net"
	"strings"
	"unicode"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/subjects"
)

// SystemAccount is the name of the NATS system account a secured server
// defines.
const SystemAccount = "SYS"

// ServerConfig describes a NATS server of a secured deployment: the PRISM,
// APP and system accounts, the exports and imports between them, and the
// auth callout that admits every application connection. Render writes it
// as a nats-server configuration file (for an external server); Apply
// configures an embedded one from the same text. It holds public keys and
// file paths only, no secret.
type ServerConfig struct {
	// ServerName is the server's name (server_name; unique in a cluster).
	// Default "prism".
	ServerName string
	// Listen is the client listener, host:port (a port of -1 picks a free
	// one). Default "127.0.0.1:4222".
	Listen string
	// StoreDir is JetStream's storage directory. Required.
	StoreDir string
	// SyncAlways makes JetStream fsync every write (sync_interval: always).
	SyncAlways bool
	// IssuerPub is the account public key (A...) whose seed signs the auth
	// callout's responses and user JWTs. Required.
	IssuerPub string
	// ServiceNKeys are the user public keys (U...) of Prism's processes:
	// the users of the PRISM account, exempt from the callout (auth_users).
	// At least one is required: the callout's own connection is one.
	ServiceNKeys []string
	// XKeyPub, if set, is a curve public key (X...): the server then
	// encrypts its authorization requests to it, and the callout must be
	// given the matching seed (CalloutConfig.XKey).
	XKeyPub string
	// TLS, if set, is the TLS configuration of the client (and leafnode)
	// listeners.
	TLS *TLSFiles
	// LeafListen, if set, is a leafnode listener (host:port). Leaf
	// connections are admitted by the auth callout like clients, into APP.
	LeafListen string
	// MonitorListen, if set, is the HTTP monitoring listener (host:port).
	MonitorListen string
	// Cluster, if set, makes the server a member of a cluster.
	Cluster *ClusterConfig
}

// TLSFiles are the TLS files of a listener.
type TLSFiles struct {
	// Cert and Key are the server's certificate and private key (PEM).
	Cert, Key string
	// CA is the PEM bundle client certificates are verified against.
	CA string
	// Verify requires a client certificate verified against CA. Its
	// verified chain reaches the auth callout, whose TLS authenticator
	// maps it to a principal (so verify_and_map is not used).
	Verify bool
}

// ClusterConfig is the cluster block of a server.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every member.
	Name string
	// Listen is the route listener (host:port).
	Listen string
	// Routes are the other members' route URLs (nats-route://host:port).
	Routes []string
}

// Validate checks the keys (their kind, by prefix and checksum), the
// addresses (host:port) and that the required fields are set. The error
// wraps ErrInvalidServerConfig and names the field.
func (c ServerConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidServerConfig, fmt.Sprintf(format, args...))
	}
	if strings.IndexFunc(c.ServerName, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return bad("ServerName %q: no spaces or control characters", c.ServerName)
	}
	if !nkeys.IsValidPublicAccountKey(c.IssuerPub) {
		return bad("IssuerPub must be an account public key (A...)")
	}
	if len(c.ServiceNKeys) == 0 {
		return bad("ServiceNKeys is empty: Prism's processes (the callout among them) need at least one PRISM user")
	}
	for i, k := range c.ServiceNKeys {
		if !nkeys.IsValidPublicUserKey(k) {
			return bad("ServiceNKeys[%d] must be a user public key (U...)", i)
		}
	}
	if c.XKeyPub != "" && !nkeys.IsValidPublicCurveKey(c.XKeyPub) {
		return bad("XKeyPub must be a curve public key (X...)")
	}
	if c.StoreDir == "" {
		return bad("StoreDir is empty: JetStream needs a storage directory")
	}
	for _, a := range [][2]string{{"Listen", c.Listen}, {"LeafListen", c.LeafListen}, {"MonitorListen", c.MonitorListen}} {
		if a[1] == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a[1]); err != nil {
			return bad("%s %q: want host:port", a[0], a[1])
		}
	}
	if c.TLS != nil && (c.TLS.Cert == "" || c.TLS.Key == "") {
		return bad("TLS needs both Cert and Key")
	}
	if c.TLS != nil && c.TLS.Verify && c.TLS.CA == "" {
		return bad("TLS.Verify needs a CA to verify client certificates against")
	}
	if cl := c.Cluster; cl != nil {
		if cl.Name == "" {
			return bad("Cluster.Name is empty")
		}
		if _, _, err := net.SplitHostPort(cl.Listen); err != nil {
			return bad("Cluster.Listen %q: want host:port", cl.Listen)
		}
	}
	return nil
}

// Apply validates c and configures o from Render's text
// (Options.ProcessConfigString), so that the embedded server and an
// external one run the same configuration. Fields of o that the text sets
// are overwritten; others (NoSigs, logging) are left to the caller.
func (c ServerConfig) Apply(o *server.Options) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := o.ProcessConfigString(c.Render()); err != nil {
		return fmt.Errorf("process the rendered server configuration: %w", err)
	}
	return nil
}

// Render returns c as a nats-server configuration file, every block
// commented. Every value is quoted and escaped, so no field can inject
// configuration; Render does not validate (Apply does: call Validate
// before handing the text to an external server).
func (c ServerConfig) Render() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	name, listen := c.ServerName, c.Listen
	if name == "" {
		name = "prism"
	}
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	exports := []string{subjects.Write("*", ">"), subjects.Read("*", ">"), subjects.Subscribe("*", ">"), subjects.AllAdmin(), subjects.Owner("*", OwnerVerify)}
	// Streams: the change fan-out, and what subscriptions deliver (ADR
	// 017; each principal may subscribe under its own delivery prefix
	// only).
	streams := []string{subjects.Changes("*"), subjects.AllDeliveries()}

	w("# NATS server configuration of a secured Prism deployment, written by")
	w("# Prism (auth.ServerConfig). Three accounts: %s (Prism's processes, its", subjects.PrismAccount)
	w("# streams and buckets), %s (every application connection, admitted by", subjects.AppAccount)
	w("# Prism's auth callout) and %s (the system account).", SystemAccount)
	w("")
	w("server_name: %s", quote(name))
	w("")
	w("# Client connections. Applications connect with their ordinary options")
	w("# (token, certificate, nkey, creds); Prism's auth callout decides.")
	w("listen: %s", quote(listen))
	if c.TLS != nil {
		w("")
		w("# TLS of the client listener.")
		c.renderTLS(w, "")
	}
	if c.MonitorListen != "" {
		w("")
		w("# HTTP monitoring (/varz, /connz, /healthz).")
		w("http: %s", quote(c.MonitorListen))
	}
	if c.LeafListen != "" {
		w("")
		w("# Leafnode connections. A leaf server connects with a credential the auth")
		w("# callout accepts and lands in %s with that principal's permissions; this", subjects.AppAccount)
		w("# server stamps the leaf connection's identity on its requests, whatever")
		w("# Nats-Request-Info the leaf forwards.")
		w("leafnodes {")
		w("  listen: %s", quote(c.LeafListen))
		if c.TLS != nil {
			c.renderTLS(w, "  ")
		}
		w("}")
	}
	if cl := c.Cluster; cl != nil {
		w("")
		w("# Cluster membership: JetStream replicates PRISM's streams across members.")
		w("cluster {")
		w("  name: %s", quote(cl.Name))
		w("  listen: %s", quote(cl.Listen))
		if len(cl.Routes) > 0 {
			w("  routes: [%s]", quoteList(cl.Routes))
		}
		w("}")
	}
	w("")
	w("# JetStream, enabled for the %s account only (below).", subjects.PrismAccount)
	w("jetstream {")
	w("  store_dir: %s", quote(c.StoreDir))
	if c.SyncAlways {
		w("  # fsync every write before acknowledging it.")
		w("  sync_interval: always")
	}
	w("}")
	w("")
	w("accounts {")
	w("  # Prism's own processes: nkey users, trusted, not sent to the callout.")
	w("  # The request services, the change fan-out and the subscriptions'")
	w("  # deliveries are exported to %s. The JetStream API is not: a", subjects.AppAccount)
	w("  # subscription's consumer is made by Prism (prism.<ns>.subscribe.>).")
	w("  %s {", subjects.PrismAccount)
	w("    jetstream: enabled")
	w("    users: [")
	for _, k := range c.ServiceNKeys {
		w("      { nkey: %s }", quote(k))
	}
	w("    ]")
	w("    exports: [")
	for _, s := range exports {
		w("      { service: %s }", quote(s))
	}
	for _, s := range streams {
		w("      { stream: %s }", quote(s))
	}
	w("    ]")
	w("  }")
	w("  # Applications. No JetStream: streams are reached only through Prism.")
	w("  # share: true makes the server stamp the caller's account and user on")
	w("  # every request as Nats-Request-Info (replacing any value the client")
	w("  # set): the identity the gateway trusts.")
	w("  %s {", subjects.AppAccount)
	w("    imports: [")
	for _, s := range exports {
		w("      { service: { account: %s, subject: %s }, share: true }", subjects.PrismAccount, quote(s))
	}
	for _, s := range streams {
		w("      { stream: { account: %s, subject: %s } }", subjects.PrismAccount, quote(s))
	}
	w("    ]")
	w("  }")
	w("  # The system account (server events, the auth callout's own subject).")
	w("  %s {}", SystemAccount)
	w("}")
	w("system_account: %s", SystemAccount)
	w("")
	w("# Every connection that is not a %s user above is sent to Prism's auth", subjects.PrismAccount)
	w("# callout (%s in %s), which answers with a user JWT signed by", subjects.AuthCallout, subjects.PrismAccount)
	w("# the issuer: placed in %s, named by the principal, with the subject", subjects.AppAccount)
	w("# permissions of its policies and its credential's expiry.")
	w("authorization {")
	w("  auth_callout {")
	w("    issuer: %s", quote(c.IssuerPub))
	w("    account: %s", subjects.PrismAccount)
	w("    auth_users: [%s]", quoteList(c.ServiceNKeys))
	if c.XKeyPub != "" {
		w("    # Authorization requests (connect options, tokens) are encrypted to")
		w("    # this curve key, and the callout's replies to the server's.")
		w("    xkey: %s", quote(c.XKeyPub))
	}
	w("  }")
	w("}")
	return b.String()
}

func (c ServerConfig) renderTLS(w func(string, ...any), indent string) {
	w("%stls {", indent)
	w("%s  cert_file: %s", indent, quote(c.TLS.Cert))
	w("%s  key_file: %s", indent, quote(c.TLS.Key))
	if c.TLS.CA != "" {
		w("%s  ca_file: %s", indent, quote(c.TLS.CA))
	}
	if c.TLS.Verify {
		w("%s  # Require a client certificate; its chain goes to the auth callout.", indent)
		w("%s  verify: true", indent)
	}
	w("%s}", indent)
}

// quote returns s as a double-quoted nats-server configuration string:
// '"' and '\' escaped, control bytes as \xXX. Inside quotes the parser
// expands no variable, so "prism.$admin.>" stays literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}
