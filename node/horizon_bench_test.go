package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
)

// BenchmarkPutRetryHorizon is one put at a time (256 B, with the Go
// client's idempotency token) on one node, with the default 24 h retry
// horizon (token looked up in and recorded to the token bucket) and with
// the duplicate window alone (ADR 025):
//
//	go test ./node/ -run '^$' -bench PutRetryHorizon -benchtime 2000x -count 3
func BenchmarkPutRetryHorizon(b *testing.B) {
	_, admin, cl := nodetest.Start(b, node.Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		horizon time.Duration
	}{{"24h", 24 * time.Hour}, {"window", 0}} {
		name := "h" + fmt.Sprint(int(tc.horizon.Seconds()))
		res, err := admin.Apply(ctx, namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Needs: namespaces.Needs{RetryHorizon: namespaces.Duration(tc.horizon)}}, 0, "test")
		if err != nil {
			b.Fatal(err)
		}
		nodetest.WaitServing(b, admin, name, res.Revision)
		kv := cl.KeyValue(name)
		v := make([]byte, 256)
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if _, err := kv.Put(ctx, fmt.Appendf(nil, "id-%d", i), []client.Item{{Key: []byte("v"), Value: v}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
