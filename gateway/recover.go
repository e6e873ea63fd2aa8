package gateway

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// runChain runs the middleware chain for r and turns a panic in it into an
// INTERNAL reply, so that one bad request cannot stop the process and every
// other namespace with it. The stack is logged; the panic's value only when
// it is a runtime error (which holds no request data): any other value
// might quote a record.
func (g *Gateway) runChain(ctx context.Context, r *request) (resp proto.Message, err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		what := fmt.Sprintf("a %T", p)
		if re, ok := p.(runtime.Error); ok {
			what = re.Error()
		}
		g.log.Error("request handler panicked", "request_id", r.id, "panic", what, "stack", string(debug.Stack()))
		resp, err = nil, &status.Error{Code: prismv1.Code_INTERNAL,
			Message: "the gateway failed on this request (request id " + r.id + " is in its log); a write may or may not be stored: retry it with the same idempotency token"}
	}()
	return g.chain(ctx, r)
}
