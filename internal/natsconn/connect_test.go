package natsconn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/subjects"
)

// connectCase is one connect attempt and what it must give.
type connectCase struct {
	name    string
	opts    Options
	wantErr error    // nil: connects
	wantMsg []string // substrings of the error
	notMsg  []string // must not appear in the error
}

func runConnectCases(t *testing.T, cases []connectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			nc, err := tc.opts.Connect(ctx)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatalf("connected; want %v", tc.wantErr)
			}
			var ce *ConnectError
			if tc.wantErr == errAny && !errors.As(err, &ce) {
				t.Errorf("err = %v (%T); want a *ConnectError", err, err)
			} else if tc.wantErr != errAny && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v; want errors.Is %v", err, tc.wantErr)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %q; want it to say %q", err, m)
				}
			}
			for _, m := range tc.notMsg {
				if strings.Contains(err.Error(), m) {
					t.Errorf("err = %q; must not contain %q", err, m)
				}
			}
		})
	}
}

// A user JWT in a credentials file, in operator mode: the CLI connects
// with it, derives the principal's reply prefix from the JWT's name, and
// so gets replies where its permissions let it subscribe and nowhere
// else.
func TestCredsInOperatorMode(t *testing.T) {
	dir := t.TempDir()
	op := newOperator(t)
	s := startServer(t, op.serverOptions(t))
	url := s.ClientURL()

	svc, err := Options{URL: url, Creds: op.creds(t, dir, "svc", nil, nil)}.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Subscribe("svc", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) }); err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}

	prefix := subjects.InboxPrefix("alice")
	alice := op.creds(t, dir, "alice", nil, func(p *jwt.Permissions) {
		p.Pub.Allow.Add("svc")
		p.Sub.Allow.Add(prefix + ".>")
	})
	o := Options{URL: url, Creds: alice}
	if name, from, err := o.Principal(); err != nil || name != "alice" || from != "--creds" {
		t.Fatalf("Principal = %q, %q, %v; want alice from --creds", name, from, err)
	}
	if got, err := o.ResolvedInboxPrefix(); err != nil || got != prefix {
		t.Fatalf("ResolvedInboxPrefix = %q, %v; want %q", got, err, prefix)
	}
	// request asks svc and returns the reply, or the error the server
	// sent asynchronously (a refused reply subscription) or the request's.
	request := func(o Options) (string, error) {
		async := make(chan error, 1)
		nc, err := o.Connect(context.Background(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case async <- err:
			default:
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		type reply struct {
			m   *nats.Msg
			err error
		}
		done := make(chan reply, 1)
		go func() {
			m, err := nc.RequestWithContext(ctx, "svc", nil)
			done <- reply{m, err}
		}()
		select {
		case err := <-async:
			return "", err
		case r := <-done:
			if r.err != nil {
				return "", r.err
			}
			return string(r.m.Data), nil
		}
	}
	if got, err := request(o); err != nil || got != "pong" {
		t.Fatalf("request with the derived prefix: %q, %v; want pong", got, err)
	}
	// The default prefix is refused by the server: the derived one is
	// what made the request work.
	o.InboxPrefix = "_INBOX"
	if got, err := request(o); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("request with _INBOX: %q, %v; want the reply subscription refused", got, err)
	}

	other, _ := nkeys.CreateAccount()
	bad := writeFile(t, dir, "junk.creds", []byte("not a creds file\n"))
	runConnectCases(t, []connectCase{
		{name: "valid", opts: Options{URL: url, Creds: alice}},
		{name: "signed by an unknown account", opts: Options{URL: url, Creds: op.creds(t, dir, "mallory", other, nil)},
			wantErr: nats.ErrAuthorization, wantMsg: []string{"the server refused the credentials file --creds " + filepath.Join(dir, "mallory.creds") + ` (user "mallory", U`}},
		{name: "no credentials", opts: Options{URL: url},
			wantErr: nats.ErrAuthorization, wantMsg: []string{"no credentials were presented; pass --creds"}},
		{name: "missing file", opts: Options{URL: url, Creds: filepath.Join(dir, "nope.creds")},
			wantErr: os.ErrNotExist, wantMsg: []string{"--creds " + filepath.Join(dir, "nope.creds") + ": no such file"}},
		{name: "not a creds file", opts: Options{URL: url, Creds: bad},
			wantErr: ErrBadCredential, wantMsg: []string{"--creds " + bad + ": not a credentials file"}},
		{name: "creds and nkey", opts: Options{URL: url, Creds: alice, NKey: alice},
			wantErr: ErrBadCredential, wantMsg: []string{"--creds and --nkey exclude each other"}},
	})
}

// An nkey user: the seed file authenticates; another seed is refused
// with the file and its public key named. An nkey names no principal.
func TestNKeyUser(t *testing.T) {
	dir := t.TempDir()
	good, _ := nkeys.CreateUser()
	goodPub, _ := good.PublicKey()
	goodSeed, _ := good.Seed()
	other, _ := nkeys.CreateUser()
	otherPub, _ := other.PublicKey()
	otherSeed, _ := other.Seed()
	s := startServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: goodPub}}})
	goodFile := writeFile(t, dir, "good.nk", goodSeed)
	otherFile := writeFile(t, dir, "other.nk", otherSeed)
	if name, _, err := (Options{NKey: goodFile}).Principal(); err != nil || name != "" {
		t.Fatalf("Principal of an nkey = %q, %v; want none", name, err)
	}
	acc, _ := nkeys.CreateAccount()
	accSeed, _ := acc.Seed()
	runConnectCases(t, []connectCase{
		{name: "valid", opts: Options{URL: s.ClientURL(), NKey: goodFile}},
		{name: "unknown key", opts: Options{URL: s.ClientURL(), NKey: otherFile},
			wantErr: nats.ErrAuthorization, wantMsg: []string{"the server refused the nkey seed --nkey " + otherFile + " (" + otherPub + ")"},
			notMsg: []string{string(otherSeed)}},
		{name: "not a user seed", opts: Options{URL: s.ClientURL(), NKey: writeFile(t, dir, "acc.nk", accSeed)},
			wantErr: ErrBadCredential, wantMsg: []string{"not a user nkey"}},
	})
}

// A token: the right one connects; a wrong one is refused naming where
// it came from, never the token itself. A JWT's sub is its principal.
func TestToken(t *testing.T) {
	const secret = "s3cret-token-for-test"
	s := startServer(t, &server.Options{Authorization: secret})
	jwtish := unsignedJWT(`{"sub":"bob@example.com","aud":"prism"}`)
	runConnectCases(t, []connectCase{
		{name: "valid", opts: Options{URL: s.ClientURL(), Token: secret}},
		{name: "wrong", opts: Options{URL: s.ClientURL(), Token: "wrong-" + secret},
			wantErr: nats.ErrAuthorization, wantMsg: []string{"the server refused the token from --token"}, notMsg: []string{secret}},
		{name: "wrong JWT", opts: Options{URL: s.ClientURL(), Token: jwtish},
			wantErr: nats.ErrAuthorization, wantMsg: []string{"the token from --token (sub bob@example.com)"}, notMsg: []string{jwtish}},
	})
	o := Options{Token: jwtish}
	if got, err := o.ResolvedInboxPrefix(); err != nil || got != subjects.InboxPrefix("bob@example.com") {
		t.Fatalf("prefix of a JWT token = %q, %v; want InboxPrefix(bob@example.com)", got, err)
	}
	if got, err := (Options{Token: secret}).ResolvedInboxPrefix(); err != nil || got != "" {
		t.Fatalf("prefix of a plain token = %q, %v; want none", got, err)
	}
}

// Where a token comes from is named by its variable when the flag was not
// given; nothing is printed of it.
func TestTokenFromEnvironment(t *testing.T) {
	const secret = "env-s3cret"
	s := startServer(t, &server.Options{Authorization: "other"})
	t.Setenv(EnvToken, secret)
	t.Setenv(EnvURL, s.ClientURL())
	var o Options
	fs := newFlagSet()
	o.Register(fs, "NATS URL")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.Token != secret || o.URL != s.ClientURL() {
		t.Fatalf("from the environment: URL %q, token set %v", o.URL, o.Token == secret)
	}
	_, err := o.Connect(context.Background())
	if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), "the token from $NATS_TOKEN") || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v; want the token named by $NATS_TOKEN, not shown", err)
	}
}

// TLS with client certificate verification: each misconfiguration names
// the file at fault.
func TestTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	authority, rogue := newCA(t, "prism test CA"), newCA(t, "rogue CA")
	caFile := writeFile(t, dir, "ca.pem", authority.pem)
	rogueCA := writeFile(t, dir, "rogue-ca.pem", rogue.pem)
	srvCert, srvKey := authority.issue(t, dir, "server", serverCertTemplate())
	cert, key := authority.issue(t, dir, "alice", clientCertTemplate("alice", []string{"alice@example.com"}, "spiffe://prism/alice"))
	rogueCert, rogueKey := rogue.issue(t, dir, "eve", clientCertTemplate("eve", nil))
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvCert, KeyFile: srvKey, CaFile: caFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, &server.Options{TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 5})
	url := "tls://" + s.Addr().String()

	o := Options{URL: url, TLSCert: cert, TLSKey: key, TLSCA: caFile}
	if got, err := o.ResolvedInboxPrefix(); err != nil || got != subjects.InboxPrefix("alice@example.com") {
		t.Fatalf("prefix = %q, %v; want InboxPrefix of the email SAN", got, err)
	}
	nc, err := o.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if inbox := nc.NewInbox(); !strings.HasPrefix(inbox, subjects.InboxPrefix("alice@example.com")+".") {
		t.Errorf("inbox %q does not use the principal's prefix", inbox)
	}
	nc.Close()

	runConnectCases(t, []connectCase{
		{name: "no client certificate", opts: Options{URL: url, TLSCA: caFile},
			wantMsg: []string{"the server requires a client certificate; pass --tls-cert and --tls-key"}, wantErr: errAny},
		{name: "client certificate of another CA", opts: Options{URL: url, TLSCert: rogueCert, TLSKey: rogueKey, TLSCA: caFile},
			wantMsg: []string{"the server refused the client certificate --tls-cert " + rogueCert + " (eve): it is not signed by a CA the server trusts"}, wantErr: errAny},
		{name: "server not in --tls-ca", opts: Options{URL: url, TLSCert: cert, TLSKey: key, TLSCA: rogueCA},
			wantMsg: []string{"the server's certificate is not signed by a CA in --tls-ca " + rogueCA}, wantErr: errAny},
		{name: "no --tls-ca", opts: Options{URL: url, TLSCert: cert, TLSKey: key},
			wantMsg: []string{"not signed by a CA this system trusts; pass --tls-ca"}, wantErr: errAny},
		{name: "key of another certificate", opts: Options{URL: url, TLSCert: cert, TLSKey: rogueKey, TLSCA: caFile},
			wantErr: ErrBadCredential, wantMsg: []string{"--tls-cert " + cert + " with --tls-key " + rogueKey}},
		{name: "certificate without key", opts: Options{URL: url, TLSCert: cert, TLSCA: caFile},
			wantErr: ErrBadCredential, wantMsg: []string{"--tls-cert " + cert + ": needs --tls-key"}},
		{name: "missing CA file", opts: Options{URL: url, TLSCert: cert, TLSKey: key, TLSCA: filepath.Join(dir, "nope.pem")},
			wantErr: os.ErrNotExist, wantMsg: []string{"--tls-ca " + filepath.Join(dir, "nope.pem") + ": no such file"}},
		{name: "CA file without PEM", opts: Options{URL: url, TLSCA: writeFile(t, dir, "empty.pem", []byte("x"))},
			wantErr: ErrBadCredential, wantMsg: []string{"no PEM certificate"}},
	})
}

// errAny as a wantErr asks for a *ConnectError, for cases that have no
// nats.go sentinel.
var errAny = errors.New("any *ConnectError")

// No server at the URL: say so, with the URL's password masked.
func TestNoServer(t *testing.T) {
	s := startServer(t, &server.Options{})
	url := s.ClientURL()
	s.Shutdown()
	s.WaitForShutdown()
	withPassword := strings.Replace(url, "nats://", "nats://ops:pa55word@", 1)
	plain := startServer(t, &server.Options{})
	runConnectCases(t, []connectCase{
		{name: "TLS to a server without it", opts: Options{URL: "tls://" + plain.Addr().String()}, wantErr: nats.ErrSecureConnWanted,
			wantMsg: []string{"the server does not offer TLS"}},
		{name: "closed port", opts: Options{URL: withPassword, Timeout: time.Second}, wantErr: nats.ErrNoServers,
			wantMsg: []string{"connect to nats://redacted@", "no NATS server answers there"}, notMsg: []string{"pa55word"}},
	})
}
