package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/status"
)

// outOfRange indexes past the end of s: a runtime error.
func outOfRange(s []int, i int) int { return s[i] }

// TestPanicBecomesInternal: a handler that panics answers INTERNAL with the
// request id, the process goes on, and the log has the stack but never a
// panic value that could quote request data.
func TestPanicBecomesInternal(t *testing.T) {
	for _, tt := range []struct {
		name     string
		panicky  handlerFunc
		wantLog  string
		hideFrom string
	}{
		{"runtime error", func(context.Context, *request) (proto.Message, error) {
			return nil, fmt.Errorf("item %d", outOfRange(nil, 3))
		}, "index out of range [3] with length 0", ""},
		{"other value", func(context.Context, *request) (proto.Message, error) {
			panic("user-1@example.com")
		}, "a string", "user-1@example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			g := &Gateway{log: slog.New(slog.NewTextHandler(&logs, nil)), chain: tt.panicky}
			resp, err := g.runChain(context.Background(), &request{id: "req-42"})
			if resp != nil || !errors.Is(err, status.ErrInternal) || !strings.Contains(err.Error(), "req-42") {
				t.Fatalf("runChain = %v, %v; want INTERNAL naming the request id", resp, err)
			}
			out := logs.String()
			if !strings.Contains(out, tt.wantLog) || !strings.Contains(out, "recover_internal_test.go") {
				t.Fatalf("log %q lacks %q or the stack", out, tt.wantLog)
			}
			if tt.hideFrom != "" && strings.Contains(out, tt.hideFrom) {
				t.Fatalf("log quotes the panic value: %q", out)
			}
		})
	}
}
