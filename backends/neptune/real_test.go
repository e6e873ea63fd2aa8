package neptune_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/neptune"
)

// TestRealNeptune runs the Graph conformance suite against the Neptune
// cluster at $PRISM_NEPTUNE_ENDPOINT (host:port or https://host:port),
// signing with the AWS SDK's default chain and region ($AWS_REGION,
// profile, IMDS, web identity). Each test works in a namespace of its
// own, dropped at the end. Skipped without the variable: no Neptune is
// reachable from CI.
//
//	PRISM_NEPTUNE_ENDPOINT=my-cluster.cluster-xxxx.eu-west-1.neptune.amazonaws.com:8182 \
//	AWS_REGION=eu-west-1 go test ./backends/neptune -run TestRealNeptune -v
func TestRealNeptune(t *testing.T) {
	endpoint := os.Getenv("PRISM_NEPTUNE_ENDPOINT")
	if endpoint == "" {
		t.Skip("PRISM_NEPTUNE_ENDPOINT is not set: no Neptune cluster to test against (the suite runs on the stand-in in TestConformance)")
	}
	cfg := conformance()
	cfg.FailCheckpointWrites = nil // needs the stand-in
	cfg.New = func(t testing.TB, _ func() time.Time) (any, func() any) {
		ns := "prism-test-" + randomName(t)
		open := func() any {
			s, err := neptune.New(context.Background(), endpoint, ns)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return s
		}
		first := open().(*neptune.Store)
		t.Cleanup(func() {
			s := open().(*neptune.Store)
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := s.Drop(ctx); err != nil {
				t.Errorf("drop namespace %s: %v", ns, err)
			}
		})
		return first, open
	}
	backendtest.Run(t, cfg)
}

func randomName(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
