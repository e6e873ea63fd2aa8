package itest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/auth/devinit"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/subjects"
)

// BenchmarkSecurity measures what authentication costs a request, in one
// run: the same puts and gets, 64 in flight, against an open Prism
// (development mode), a secured one whose client connects with an nkey
// over plain TCP (the callout, the account import, identity, policy
// checks), and a secured one over TLS with a client certificate. The
// audit runs in every mode. Rerun:
//
//	go test ./itest -run '^$' -bench BenchmarkSecurity -benchtime 5s
func BenchmarkSecurity(b *testing.B) {
	for _, mode := range []string{"open", "nkey", "tls"} {
		b.Run(mode, func(b *testing.B) {
			// One Prism at a time, without background compaction: the
			// modes share two cores.
			kv := benchPrism(b, mode)
			value := []byte(strings.Repeat("v", 256))
			ctx := context.Background()
			b.Run("put", func(b *testing.B) {
				var n atomic.Int64
				b.SetParallelism(32) // 64 in flight on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						id := fmt.Appendf(nil, "id-%d", n.Add(1)%10000)
						if _, err := kv.Put(ctx, id, []client.Item{{Key: []byte("k"), Value: value}}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			b.Run("get", func(b *testing.B) {
				var n atomic.Int64
				b.SetParallelism(32)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						id := fmt.Appendf(nil, "id-%d", n.Add(1)%10000)
						if _, err := kv.Get(ctx, id); err != nil && !strings.Contains(err.Error(), "NOT_FOUND") {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// benchPrism starts a Prism in mode (open, nkey, tls) serving namespace
// bench (eventual) that user app may read and write, and returns app's
// client of it.
func benchPrism(b *testing.B, mode string) *client.KeyValue {
	b.Helper()
	dir := b.TempDir()
	ns := namespaces.Namespace{Name: "bench", Abstraction: "keyvalue", Backend: "sqlite",
		Access: namespaces.Access{Read: namespaces.NewNames("app"), Write: namespaces.NewNames("app")}}
	cfg := node.Config{DataDir: dir, NATSListen: "127.0.0.1:0", NoCompact: true}
	var res *devinit.Result
	if mode != "open" {
		var err error
		if res, err = devinit.Init(filepath.Join(dir, "auth"), devinit.Options{}); err != nil {
			b.Fatal(err)
		}
		cfg.AuthConfig = res.AuthConfig
		if mode == "nkey" {
			// The same configuration without TLS on the listener.
			var f devinit.File
			data, _ := os.ReadFile(res.AuthConfig)
			if err := yaml.Unmarshal(data, &f); err != nil {
				b.Fatal(err)
			}
			f.ServerTLS = devinit.ServerTLSFile{}
			data, _ = yaml.Marshal(f)
			if err := os.WriteFile(res.AuthConfig, data, 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, nil, node.Seed{Namespaces: []namespaces.Namespace{ns}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close(context.Background()) })
	o := natsconn.Options{URL: n.URL()}
	for _, u := range userFiles(res) {
		switch mode {
		case "nkey":
			o.NKey, o.InboxPrefix = u.NKey, u.Inbox
		case "tls":
			o.TLSCert, o.TLSKey, o.TLSCA = u.Cert, u.Key, res.CACert
		}
	}
	nc, err := o.Connect(ctx)
	if err != nil {
		b.Fatalf("%s: connect: %v", mode, err)
	}
	b.Cleanup(nc.Close)
	c, err := client.New(nc, client.WithTimeout(10*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	return c.KeyValue("bench")
}

type benchUser struct{ NKey, Cert, Key, Inbox string }

// userFiles returns app's files of res (none when res is nil).
func userFiles(res *devinit.Result) []benchUser {
	if res == nil {
		return nil
	}
	for _, u := range res.Users {
		if u.Name == "app" {
			return []benchUser{{NKey: u.NKey, Cert: u.Cert, Key: u.Key, Inbox: subjects.InboxPrefix("app")}}
		}
	}
	return nil
}
