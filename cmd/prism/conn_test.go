package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
)

// connFlags are the flags every command that dials NATS takes (issue #14).
var connFlags = []string{"nats-url", "creds", "nkey", "tls-cert", "tls-key", "tls-ca", "token", "inbox-prefix"}

// Every command that dials NATS takes the same connection flags.
func TestEveryNATSCommandTakesTheConnectionFlags(t *testing.T) {
	want := []string{
		"prism serve", "prism bench", "prism plan", "prism apply", "prism replay", "prism compact",
		"prism ns list", "prism ns get", "prism ns history", "prism ns delete",
		"prism migrate start", "prism migrate status", "prism migrate verify",
		"prism migrate cutover", "prism migrate rollback", "prism migrate finalize",
		"prism audit", "prism keys list", "prism keys rotate", "prism keys rewrap", "prism forget",
		"prism dlq list", "prism dlq show", "prism dlq redrive", "prism dlq drop",
	}
	found := map[string]*cobra.Command{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		found[c.CommandPath()] = c
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	for _, path := range want {
		c := found[path]
		if c == nil {
			t.Errorf("no command %q", path)
			continue
		}
		for _, name := range connFlags {
			if c.Flags().Lookup(name) == nil {
				t.Errorf("%s has no --%s", path, name)
			}
		}
	}
	// And every command with --nats-url is in the list above.
	for path, c := range found {
		if c.Flags().Lookup("nats-url") != nil && !slices.Contains(want, path) {
			t.Errorf("%s takes --nats-url but is not checked here", path)
		}
	}
}

// tokenServer runs a NATS server with JetStream that requires token.
func tokenServer(t *testing.T, token string) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), Authorization: token, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	return s.ClientURL()
}

// The CLI presents --token (or $NATS_TOKEN) to a server that requires
// one, and says which credential was refused, never showing it.
func TestCommandsConnectWithAToken(t *testing.T) {
	const token = "cli-s3cret-token"
	url := tokenServer(t, token)
	nc, err := nats.Connect(url, nats.Token(token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	startAdmin(t, nc)

	tests := []struct {
		name    string
		env     string
		args    []string
		wantErr string // "" = success
		wantOut string
	}{
		{name: "token flag", args: []string{"ns", "list", "--token", token}, wantOut: "NAME"},
		{name: "token from NATS_TOKEN", env: token, args: []string{"ns", "list"}, wantOut: "NAME"},
		{name: "no token", args: []string{"ns", "list"}, wantErr: "the server refused an anonymous connection: no credentials were presented"},
		{name: "wrong token", args: []string{"ns", "list", "--token", "wrong"}, wantErr: "the server refused the token from --token"},
		{name: "wrong token from NATS_TOKEN", env: "wrong", args: []string{"compact", "orders"}, wantErr: "the server refused the token from $NATS_TOKEN"},
		{name: "serve --nats-url without the token", args: []string{"serve", "--data-dir", t.TempDir()}, wantErr: "no credentials were presented"},
		{name: "bench --nats-url with a wrong token", args: []string{"bench", "--token", "wrong", "--duration", "1ms"}, wantErr: "the server refused the token from --token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NATS_TOKEN", tt.env)
			t.Setenv("NATS_URL", url)
			args := tt.args
			if args[0] == "serve" || args[0] == "bench" {
				args = append(args, "--nats-url", url) // their --nats-url has no default
			}
			out, err := runCLI(t, args...)
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(out, tt.wantOut) {
					t.Fatalf("err = %v, out:\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error()+out, token) {
				t.Fatalf("the token shows in %q / %q", err, out)
			}
		})
	}
}

// startAdmin serves the admin API of a fresh registry on nc.
func startAdmin(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := namespaces.OpenRegistry(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := namespaces.NewAdmin(nc, reg, namespaces.AdminConfig{Cluster: namespaces.Cluster{Nodes: 1}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Drain() })
}

// Without --nats-url, serve and bench run their own server: a credential
// flag is refused rather than ignored.
func TestCredentialsWithoutNATSURLAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--data-dir", t.TempDir(), "--creds", "/nonexistent.creds"},
		{"bench", "--token", "x", "--duration", "1ms"},
	} {
		_, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), "applies to the server of --nats-url; without it prism "+args[0]+" embeds its own") {
			t.Errorf("%v: err = %v", args, err)
		}
	}
}

// %v of a command's flags shows no token: the connection options print
// themselves redacted.
func TestFlagsPrintNoToken(t *testing.T) {
	const token = "flag-s3cret"
	conn := natsconn.Options{URL: "nats://127.0.0.1:4222", Token: token}
	for _, v := range []any{adminFlags{Conn: conn}, replayFlags{Conn: conn}, compactFlags{Conn: conn}, serveFlags{NATS: conn}, benchFlags{NATS: conn}} {
		for _, verb := range []string{"%v", "%+v"} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, token) || !strings.Contains(got, "[redacted]") {
				t.Errorf("%s of %T = %s", verb, v, got)
			}
		}
	}
}
