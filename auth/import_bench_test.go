package auth_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/subjects"
)

// BenchmarkImportedRequest is what the account split costs one request,
// in the server alone: the same 256-byte request-reply to a responder in
// PRISM, sent from inside PRISM (no import) and from APP through the
// share: true import (the server stamps Nats-Request-Info and maps the
// reply back). 64 requests in flight. Rerun:
//
//	go test ./auth -run '^$' -bench BenchmarkImportedRequest
func BenchmarkImportedRequest(b *testing.B) {
	e := newEnv(b, envOptions{})
	subject := subjects.Write("demo", "put")
	if _, err := e.svc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := e.svc.Flush(); err != nil {
		b.Fatal(err)
	}
	inside, err := nats.Connect(e.srv.ClientURL(), nats.Nkey(mustPub(b, e), e.svcKey.Sign))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(inside.Close)
	app := e.mustConnect("alice-token", alice.Name)
	body := make([]byte, 256)
	for _, tc := range []struct {
		name string
		nc   *nats.Conn
	}{{"inside-prism", inside}, {"through-import", app.Conn}} {
		b.Run(tc.name, func(b *testing.B) {
			var failed atomic.Int64
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tc.nc.Request(subject, body, 5*time.Second); err != nil {
						failed.Add(1)
					}
				}
			})
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests failed", n)
			}
		})
	}
}

func mustPub(b *testing.B, e *env) string {
	pub, err := e.svcKey.PublicKey()
	if err != nil {
		b.Fatal(err)
	}
	return pub
}
