package gateway

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// Every request is first admitted (Gateway.admit: audit healthy, caller
// identified, namespace policy checked), then passes through one chain of
// middlewares:
//
//	decode → validate → handle
//
// and its outcome, refusals included, is audited before the reply
// (Gateway.audit).

// request is one request travelling through the chain.
type request struct {
	subject string
	header  nats.Header
	data    []byte
	enc     encoding
	id      string // request id, for logs and the reply

	ns    *namespaceEntry // set before the chain runs
	route *route          // set before the chain runs
	// unserved names the namespace when it is registered but not served by
	// this gateway (MarkUnserved): the request is forwarded (forward.go).
	unserved string
	msg      proto.Message // set by decode
	// kind and nsName are the subject's kind (write, read) and namespace
	// once it parsed, whether or not the namespace is registered.
	kind, nsName string
	// principal is who sent the request; set by admit.
	principal auth.Principal
	// entityID is the record an entity put names, for the audit; set by
	// the handler once the record decoded.
	entityID []byte
}

// handlerFunc handles a request and returns the reply message, or an error
// (an *status.Error for anything the client should see).
type handlerFunc func(ctx context.Context, r *request) (proto.Message, error)

// middleware wraps a handlerFunc.
type middleware func(next handlerFunc) handlerFunc

// chain returns h wrapped in mws, the first being the outermost.
func chain(h handlerFunc, mws ...middleware) handlerFunc {
	for _, mw := range slices.Backward(mws) {
		h = mw(h)
	}
	return h
}

// route is one operation: how to make, check and handle its request.
type route struct {
	op         string // "write.put"
	spanName   string // "prism write.put"
	newRequest func() proto.Message
	// newFor, when set, makes the request of namespace ns instead of
	// newRequest: an entity put, whose record is the namespace's message.
	newFor   func(ns *namespaceEntry) proto.Message
	validate func(proto.Message) error
	handle   handlerFunc
}

// typedRoute builds a route from a typed validator and handler over the
// operation's request message.
func typedRoute[Req proto.Message](op string, newReq func() Req, validate func(Req) error, handle func(context.Context, *request, Req) (proto.Message, error)) route {
	return route{
		op:         op,
		spanName:   "prism " + op,
		newRequest: func() proto.Message { return newReq() },
		validate:   func(m proto.Message) error { return validate(m.(Req)) },
		handle: func(ctx context.Context, r *request) (proto.Message, error) {
			return handle(ctx, r, r.msg.(Req))
		},
	}
}

func routeMap(rs []route) map[string]route {
	m := make(map[string]route, len(rs))
	for _, r := range rs {
		m[r.op] = r
	}
	return m
}

// routeNames lists the operations of abstraction, sorted.
func (g *Gateway) routeNames(abstraction string) string {
	names := slices.Sorted(maps.Keys(g.routes[abstraction]))
	return strings.Join(names, ", ")
}

// unimplemented is the error for operation op, which the abstraction of ns
// does not have. When another abstraction has op, it says so: the likely
// mistake is the namespace, not the operation.
func (g *Gateway) unimplemented(op string, ns *namespaceEntry) *status.Error {
	for _, abs := range namespaces.Abstractions {
		if _, ok := g.routes[abs][op]; ok && abs != ns.Abstraction {
			return status.Newf(prismv1.Code_UNIMPLEMENTED, "operation %s is a %s operation, but namespace %s is %s; its operations are %s", op, abs, ns.Name, ns.Abstraction, g.routeNames(ns.Abstraction))
		}
	}
	return status.Newf(prismv1.Code_UNIMPLEMENTED, "operation %s is not supported by namespace %s (%s); supported: %s", op, ns.Name, ns.Abstraction, g.routeNames(ns.Abstraction))
}

// decode parses the body into the route's request message.
func (g *Gateway) decode(next handlerFunc) handlerFunc {
	return func(ctx context.Context, r *request) (proto.Message, error) {
		m := r.route.newRequest()
		if r.route.newFor != nil {
			m = r.route.newFor(r.ns)
		}
		if err := r.enc.unmarshal(r.data, m); err != nil {
			return nil, status.Invalidf("the body of %s is not a valid %s in %s: %v", r.route.op, m.ProtoReflect().Descriptor().FullName(), r.enc, err)
		}
		r.msg = m
		return next(ctx, r)
	}
}

// validate checks the request against the documented limits; nothing is
// written for an invalid request.
func (g *Gateway) validate(next handlerFunc) handlerFunc {
	return func(ctx context.Context, r *request) (proto.Message, error) {
		if err := r.route.validate(r.msg); err != nil {
			return nil, err
		}
		return next(ctx, r)
	}
}

// handle is the end of the chain: the route's handler.
func (g *Gateway) handle(ctx context.Context, r *request) (proto.Message, error) {
	return r.route.handle(ctx, r)
}
