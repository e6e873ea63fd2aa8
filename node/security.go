package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/devinit"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/subjects"
)

// authFile is the operator's auth configuration (--auth-config), the
// layout prism auth init writes: the authenticators, the global admins,
// the callout's issuer, Prism's service key and the listeners' TLS.
// Relative paths in it are resolved against its directory.
type authFile = devinit.File

// loadAuthFile reads and checks the auth configuration at path.
func loadAuthFile(path string) (*authFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--auth-config: %w", err)
	}
	var f authFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("--auth-config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&f.Callout.IssuerSeedFile, &f.Service.SeedFile, &f.UserIssuer.SeedFile, &f.ServerTLS.CertFile, &f.ServerTLS.KeyFile, &f.ServerTLS.CAFile, &f.Authn.TLS.CAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range f.Authn.OIDC {
		if p := &f.Authn.OIDC[i].CAFile; *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if f.Callout.IssuerSeedFile == "" {
		return nil, fmt.Errorf("--auth-config %s: callout.issuer_seed_file is required: the account key the auth callout signs with", path)
	}
	if err := f.Authn.Validate(); err != nil {
		return nil, fmt.Errorf("--auth-config %s: %w", path, err)
	}
	if err := (auth.Policies{Admins: f.Admins}).Validate(); err != nil {
		return nil, fmt.Errorf("--auth-config %s: %w", path, err)
	}
	return &f, nil
}

// readSeed reads an nkey seed file; what names it in errors. The seed
// never appears in an error.
func readSeed(path, what string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer wipe(b)
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return nil, fmt.Errorf("%s %s: not an nkey seed", what, path)
	}
	return kp, nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// security is the node's authentication and authorization: it implements
// gateway.Security and namespaces.AdminSecurity over the live policies
// (global admins from the auth configuration, each namespace's access
// from the registry), which the auth callout reads as well.
type security struct {
	admins []string
	mu     sync.Mutex // serializes writers of policies
	// policies is replaced, never changed in place: readers load it
	// without a lock on every request and every connection.
	policies atomic.Pointer[auth.Policies]
	// identities caches Identify: Nats-Request-Info text → Principal;
	// cached counts its entries.
	identities sync.Map
	cached     atomic.Int64
}

func newSecurity(admins []string) *security {
	s := &security{admins: admins}
	s.policies.Store(&auth.Policies{Admins: admins, Namespaces: map[string]auth.Policy{}})
	return s
}

// Policies is the view in force now.
func (s *security) Policies() auth.Policies { return *s.policies.Load() }

// setPolicy records ns's access policy; remove drops it.
func (s *security) setPolicy(ns string, p auth.Policy) { s.update(ns, &p) }
func (s *security) removePolicy(ns string)             { s.update(ns, nil) }

func (s *security) update(ns string, p *auth.Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.policies.Load()
	next := &auth.Policies{Admins: s.admins, Namespaces: make(map[string]auth.Policy, len(cur.Namespaces)+1)}
	for k, v := range cur.Namespaces {
		next.Namespaces[k] = v
	}
	if p == nil {
		delete(next.Namespaces, ns)
	} else {
		next.Namespaces[ns] = *p
	}
	s.policies.Store(next)
}

// Identify returns who sent a request: the principal the NATS server
// stamped in Nats-Request-Info (auth.FromRequestInfo). The header is the
// same on every request of a connection (the server writes it; a client
// cannot), so its decoding is cached by its text.
func (s *security) Identify(h nats.Header) (auth.Principal, error) {
	vals := h[subjects.HeaderRequestInfo]
	if len(vals) != 1 {
		return auth.FromRequestInfo(h) // absent or doubled: decided there
	}
	if p, ok := s.identities.Load(vals[0]); ok {
		return p.(auth.Principal), nil
	}
	p, err := auth.FromRequestInfo(h)
	if err != nil {
		return p, err
	}
	if s.cached.Add(1) > maxCachedIdentities {
		s.identities.Clear()
		s.cached.Store(1)
	}
	s.identities.Store(vals[0], p)
	return p, nil
}

// maxCachedIdentities bounds the identity cache: about one entry per
// connection (and per RTT the server measured for it).
const maxCachedIdentities = 16384

// Authorize checks p against the live policies: the registry's (kept by
// setPolicy), for served and unserved namespaces alike.
func (s *security) Authorize(p auth.Principal, ns string, perm auth.Permission) error {
	return s.policies.Load().Authorize(p, ns, perm)
}

// isLoopback reports whether host:port listens only on this machine.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errOpen is the refusal of a listener beyond loopback without
// authentication.
var errOpen = errors.New("reachable beyond this machine with authentication off")

// checkOpen refuses to serve without authentication anywhere but on
// loopback: c names no auth configuration, so every listener and the
// external server must be local.
func (c Config) checkOpen() error {
	if c.AuthConfig != "" {
		return nil
	}
	how := "configure authentication (prism auth init --data-dir " + c.DataDir + ", then prism serve --auth-config " + filepath.Join(c.DataDir, "auth", "auth.yaml") + "; docs/security.md) or listen on 127.0.0.1"
	switch {
	case c.Conn == nil && c.NATSURL == "" && !isLoopback(c.NATSListen):
		return fmt.Errorf("--nats-listen %s: %w: %s", c.NATSListen, errOpen, how)
	case c.HTTPListen != "" && !isLoopback(c.HTTPListen):
		return fmt.Errorf("--http-listen %s: %w: %s", c.HTTPListen, errOpen, how)
	case c.NATSURL != "" && len(c.NATSOptions) == 0 && !loopbackURL(c.NATSURL):
		// With credentials the server at least authenticates who reaches
		// it; the warning at start says the gateway then trusts them all.
		return fmt.Errorf("--nats-url %s: %w: %s", c.NATSURL, errOpen, how)
	}
	return nil
}

// loopbackURL reports whether every server of a NATS URL list is on this
// machine (a loopback address, or the unspecified 0.0.0.0 or ::, which a
// dial reaches locally).
func loopbackURL(urls string) bool {
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
		}
		if i := strings.LastIndex(u, "@"); i >= 0 {
			u = u[i+1:]
		}
		if !strings.Contains(u, ":") {
			u += ":4222"
		}
		if host, _, err := net.SplitHostPort(u); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				continue
			}
		}
		if !isLoopback(u) {
			return false
		}
	}
	return true
}

// applyPolicy keeps sec's view of namespace n's policy current.
func (sec *security) applyPolicy(c namespaces.RegistryChange) {
	if sec == nil || c.Err != nil {
		return
	}
	switch c.Op {
	case namespaces.RegistryPut:
		sec.setPolicy(c.Entry.Namespace.Name, c.Entry.Namespace.Access.Policy())
	case namespaces.RegistryDelete, namespaces.RegistryPurge:
		sec.removePolicy(c.Name)
	}
}

// secureMaterial is what a Node with authentication on runs with: the
// auth configuration, the callout's issuer key and this process's own
// service key, made at start and never written anywhere.
type secureMaterial struct {
	file   *authFile
	issuer nkeys.KeyPair
	node   nkeys.KeyPair
}

func newSecureMaterial(path string) (*secureMaterial, error) {
	f, err := loadAuthFile(path)
	if err != nil {
		return nil, err
	}
	issuer, err := readSeed(f.Callout.IssuerSeedFile, "callout.issuer_seed_file")
	if err != nil {
		return nil, err
	}
	if pub, _ := issuer.PublicKey(); !nkeys.IsValidPublicAccountKey(pub) {
		issuer.Wipe()
		return nil, fmt.Errorf("callout.issuer_seed_file %s: not an account seed (SA...)", f.Callout.IssuerSeedFile)
	}
	node, err := nkeys.CreateUser()
	if err != nil {
		issuer.Wipe()
		return nil, fmt.Errorf("make this process's service key: %w", err)
	}
	return &secureMaterial{file: f, issuer: issuer, node: node}, nil
}

// nodeAuth is the option the Node connects to its embedded server with.
func (m *secureMaterial) nodeAuth() nats.Option {
	pub, _ := m.node.PublicKey()
	return nats.Nkey(pub, m.node.Sign)
}

// serverConfig is the embedded server's configuration: accounts, the
// callout, TLS from the auth configuration's server_tls.
func (m *secureMaterial) serverConfig(c Config, host string, port int) auth.ServerConfig {
	nodePub, _ := m.node.PublicKey()
	issuerPub, _ := m.issuer.PublicKey()
	services := []string{nodePub}
	if p := m.file.Service.Public; p != "" {
		services = append(services, p)
	}
	if port == 0 {
		port = -1
	}
	sc := auth.ServerConfig{
		ServerName: "prism", Listen: net.JoinHostPort(host, strconv.Itoa(port)),
		StoreDir: filepath.Join(c.DataDir, "jetstream"), SyncAlways: c.SyncAlways,
		IssuerPub: issuerPub, ServiceNKeys: services,
	}
	if t := m.file.ServerTLS; t.CertFile != "" {
		sc.TLS = &auth.TLSFiles{Cert: t.CertFile, Key: t.KeyFile, CA: t.CAFile}
	}
	return sc
}

// configure sets up the embedded server's options o.
func (m *secureMaterial) configure(o *server.Options, c Config, host string, port int) error {
	if err := m.serverConfig(c, host, port).Apply(o); err != nil {
		return fmt.Errorf("embedded NATS server: %w", err)
	}
	// Clients with a certificate present it, clients with a token or
	// creds need none: verify a certificate when one is given, and let
	// the callout's TLS authenticator map its verified chain.
	if o.TLSConfig != nil && m.file.ServerTLS.CAFile != "" {
		o.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return nil
}

// close drops the keys.
func (m *secureMaterial) close() {
	if m == nil {
		return
	}
	m.issuer.Wipe()
	m.node.Wipe()
}

// startCallout starts the auth callout over nc (a PRISM service user's
// connection) with the authenticators of sm's configuration and the
// policies of sec.
func startCallout(ctx context.Context, nc *nats.Conn, sm *secureMaterial, sec *security, aud auditor, reg prometheus.Registerer, log *slog.Logger) (*auth.Callout, error) {
	authenticator, err := authn.New(ctx, sm.file.Authn)
	if err != nil {
		return nil, fmt.Errorf("--auth-config: %w", err)
	}
	co, err := auth.NewCallout(nc, auth.CalloutConfig{
		Issuer: sm.issuer, Authenticator: authenticator, Policies: sec.Policies,
		MaxLifetime: calloutMaxLifetime, Logger: log.With("component", "auth"), Registerer: reg,
		Audit: aud.AuditAdmission,
	})
	if err != nil {
		return nil, err
	}
	if err := co.Start(); err != nil {
		return nil, err
	}
	return co, nil
}

// calloutMaxLifetime caps the user JWTs the callout issues, so that a
// connection picks up a narrowed policy in the server's permissions at
// least this often (the gateway enforces it at once regardless).
const calloutMaxLifetime = time.Hour

// ServerConfigText is the nats-server configuration of an external server
// for the auth configuration at authConfig: its issuer, its service key
// (the PRISM user every Prism process connects as), its server_tls, and
// the given listener, store and fsync policy. It holds no secret.
//
// A nats-server configuration file cannot verify client certificates
// only when one is given (the embedded server does): with verify every
// client must present one, and the callout maps it; without, the server
// asks for none and certificates cannot authenticate.
func ServerConfigText(authConfig, listen, storeDir string, syncAlways, verify bool) (string, error) {
	f, err := loadAuthFile(authConfig)
	if err != nil {
		return "", err
	}
	if f.Service.Public == "" {
		return "", fmt.Errorf("--auth-config %s: service.public is empty: the PRISM user Prism's processes connect as", authConfig)
	}
	issuer := f.Callout.Issuer
	if issuer == "" {
		kp, err := readSeed(f.Callout.IssuerSeedFile, "callout.issuer_seed_file")
		if err != nil {
			return "", err
		}
		issuer, _ = kp.PublicKey()
		kp.Wipe()
	}
	sc := auth.ServerConfig{Listen: listen, StoreDir: storeDir, SyncAlways: syncAlways, IssuerPub: issuer, ServiceNKeys: []string{f.Service.Public}}
	if t := f.ServerTLS; t.CertFile != "" {
		sc.TLS = &auth.TLSFiles{Cert: t.CertFile, Key: t.KeyFile, CA: t.CAFile, Verify: verify}
	}
	if err := sc.Validate(); err != nil {
		return "", err
	}
	return sc.Render(), nil
}

// httpTLS is the TLS of the HTTP listener: nil in development mode;
// otherwise server_tls's certificate, and client certificates required
// and verified against server_tls's CA (else the TLS authenticator's).
func (m *secureMaterial) httpTLS() (*tls.Config, error) {
	if m == nil {
		return nil, nil
	}
	t := m.file.ServerTLS
	if t.CertFile == "" {
		return nil, errors.New("--http-listen with authentication on needs server_tls in the auth configuration: its metrics and readiness are served over HTTPS to clients with a certificate")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server_tls: %w", err)
	}
	caFile := t.CAFile
	if caFile == "" {
		caFile = m.file.Authn.TLS.CAFile
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("server_tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("server_tls.ca_file %s: no PEM certificate", caFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}
