package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/auth"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Security decides who sent a request and whether it may run. Without one
// (development mode) every request is Anonymous and allowed. Methods are
// called on every request and must be safe for concurrent use.
type Security interface {
	// Identify returns the principal of a request from its headers (the
	// Nats-Request-Info the NATS server stamped), or an error when the
	// request cannot be attributed to anyone.
	Identify(h nats.Header) (auth.Principal, error)
	// Authorize returns nil when p may perform perm on namespace ns,
	// registered or not, and otherwise a PERMISSION_DENIED *status.Error
	// naming the missing permission and never whether ns exists.
	Authorize(p auth.Principal, ns string, perm auth.Permission) error
}

// Access is one request as the audit records it.
type Access struct {
	Principal auth.Principal
	Namespace string // "" when the subject named none
	Op        string // the route's operation, e.g. "write.put"
	// IDs are the records the request named or the reply returned, raw:
	// the Auditor hashes them. Count is how many records it touched.
	IDs       [][]byte
	Count     int
	Code      string // "OK" or the status code name
	Latency   time.Duration
	RequestID string
	TraceID   string
	Seq       uint64 // stream sequence of a write, 0 otherwise
}

// Auditor appends an audit record for every request the gateway answers.
type Auditor interface {
	// Audit records a. With wait it returns once the record is stored (or
	// with the error that kept it from being stored); without, it may
	// return before.
	Audit(ctx context.Context, a Access, wait bool) error
	// Healthy returns nil while records are being stored, and otherwise
	// the UNAVAILABLE error requests are refused with.
	Healthy() error
}

// permission is the permission a request of kind needs.
func permission(kind string) auth.Permission {
	switch kind {
	case subjects.KindWrite:
		return auth.Write
	case subjects.KindSubscribe:
		return auth.Subscribe
	}
	return auth.Read
}

// authenticate establishes who sent the request. It runs before the
// namespace is resolved, so that every refusal, an unknown namespace's
// included, is attributed and audited.
func (g *Gateway) authenticate(r *request) error {
	if g.opts.security == nil {
		r.principal = auth.Anonymous
		return nil
	}
	p, err := g.opts.security.Identify(r.header)
	if err != nil {
		return &status.Error{Code: prismv1.Code_PERMISSION_DENIED, Message: "the request carries no identity Prism trusts: connect through the application account with a credential", Err: err}
	}
	r.principal = p
	return nil
}

// authorizeResolved checks the caller may run the request on its
// namespace. resolveErr is how resolving the subject failed, if it did: an
// unknown namespace is refused like a forbidden one unless the caller may
// see it, so a refusal never says which namespaces exist.
func (g *Gateway) authorizeResolved(r *request, resolveErr error) error {
	sec := g.opts.security
	if sec == nil || r.nsName == "" {
		return resolveErr
	}
	if err := sec.Authorize(r.principal, r.nsName, permission(r.kind)); err != nil {
		return err
	}
	return resolveErr
}

// auditHealthy refuses the request while the audit cannot store records:
// nothing is served unaudited (ADR 015).
func (g *Gateway) auditHealthy() error {
	if g.opts.auditor == nil {
		return nil
	}
	return g.opts.auditor.Healthy()
}

// audit records the outcome of r. A write is acknowledged only once its
// record is stored: when storing fails the reply becomes UNAVAILABLE and
// says whether the write itself was stored. A read's record is stored
// asynchronously; a read whose record could not even be kept is refused.
func (g *Gateway) audit(ctx context.Context, r *request, resp proto.Message, code string, d time.Duration, respErr error) error {
	a := g.opts.auditor
	if a == nil {
		return nil
	}
	acc := Access{Principal: r.principal, Code: code, Latency: d, RequestID: r.id}
	if r.ns != nil {
		acc.Namespace = r.ns.Name
	} else if r.nsName != "" {
		acc.Namespace = r.nsName
	}
	if r.route != nil {
		acc.Op = r.route.op
	} else {
		acc.Op = r.kind + ".unknown"
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		acc.TraceID = sc.TraceID().String()
	}
	acc.IDs, acc.Count = accessed(r.msg, resp)
	if r.entityID != nil { // an entity put: its request is the namespace's own type
		acc.IDs, acc.Count = [][]byte{r.entityID}, 1
	}
	if w, ok := resp.(*prismv1.WriteResponse); ok {
		acc.Seq = w.GetSeq()
	}
	// An open creates server-side state, like a write: it is
	// acknowledged only once its record is stored.
	wait := r.kind == subjects.KindWrite || acc.Op == OpSubscribeOpen
	err := a.Audit(ctx, acc, wait)
	switch {
	case err == nil:
		return nil
	case acc.Op == OpSubscribeOpen:
		if o, ok := resp.(*prismv1.SubscribeOpenResponse); ok {
			g.dropSubscription(acc.Namespace, o.GetConsumer())
		}
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: "audit stream unavailable: the subscription was not opened; retry later", Err: err}
	case !wait:
		// Not kept at all: the read is not answered unaudited.
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: "audit stream unavailable: the read was not answered; retry later", Err: err}
	case acc.Seq != 0 && respErr == nil:
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Seq: acc.Seq, Err: err,
			Message: "audit stream unavailable: the write was stored but its audit record was not; retry with the same idempotency token"}
	default:
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: "audit stream unavailable: the write was not acknowledged; retry with the same idempotency token", Err: err}
	}
}

// maxAuditedIDs bounds the ids one audit record lists; Count still says
// how many there were.
const maxAuditedIDs = 100

// accessed returns the records a request named or its reply returned, and
// how many records it touched.
func accessed(req, resp proto.Message) ([][]byte, int) {
	switch q := req.(type) {
	case *prismv1.PutRequest:
		return [][]byte{q.GetId()}, 1
	case *prismv1.DeleteRequest:
		return [][]byte{q.GetId()}, 1
	case *prismv1.GetRequest:
		return [][]byte{q.GetId()}, 1
	case *prismv1.MutateRequest:
		ids := make([][]byte, 0, min(len(q.GetMutations()), maxAuditedIDs))
		for _, m := range q.GetMutations() {
			if len(ids) == maxAuditedIDs {
				break
			}
			if p := m.GetPut(); p != nil {
				ids = append(ids, p.GetId())
			} else {
				ids = append(ids, m.GetDelete().GetId())
			}
		}
		return ids, len(q.GetMutations())
	case *prismv1.AppendRequest:
		return [][]byte{q.GetSeriesId()}, len(q.GetEvents())
	case *prismv1.ReadRangeRequest:
		return [][]byte{q.GetSeriesId()}, eventCount(resp)
	case *prismv1.SearchRequest:
		var ids [][]byte
		if len(q.GetSeriesId()) > 0 {
			ids = [][]byte{q.GetSeriesId()}
		}
		return ids, eventCount(resp)
	case *prismv1.LogAppendRequest:
		return [][]byte{q.GetKey()}, 1
	case *prismv1.SubscribeNextRequest:
		return nil, int(q.GetBatch())
	case *prismv1.LogFetchRequest:
		if f, ok := resp.(*prismv1.LogFetchResponse); ok {
			return nil, len(f.GetRecords())
		}
	case *prismv1.EntityDeleteRequest:
		return [][]byte{[]byte(q.GetKey())}, 1
	case *prismv1.EntityGetRequest:
		return [][]byte{[]byte(q.GetKey())}, 1
	case *prismv1.EntityQueryRequest:
		if resp != nil {
			if f := resp.ProtoReflect().Descriptor().Fields().ByName("records"); f != nil && f.IsList() {
				return nil, resp.ProtoReflect().Get(f).List().Len()
			}
		}
	case *prismv1.UpsertVertexRequest:
		return [][]byte{[]byte(q.GetId())}, 1
	case *prismv1.DeleteVertexRequest:
		return [][]byte{[]byte(q.GetId())}, 1
	case *prismv1.GetVertexRequest:
		return [][]byte{[]byte(q.GetId())}, 1
	case *prismv1.UpsertEdgeRequest:
		return [][]byte{subjects.GraphEdgeID(q.GetFrom(), q.GetLabel(), q.GetTo())}, 1
	case *prismv1.DeleteEdgeRequest:
		return [][]byte{subjects.GraphEdgeID(q.GetFrom(), q.GetLabel(), q.GetTo())}, 1
	case *prismv1.GetEdgeRequest:
		return [][]byte{subjects.GraphEdgeID(q.GetFrom(), q.GetLabel(), q.GetTo())}, 1
	case *prismv1.NeighboursRequest:
		if n, ok := resp.(*prismv1.NeighboursResponse); ok {
			return [][]byte{[]byte(q.GetId())}, len(n.GetNeighbours())
		}
		return [][]byte{[]byte(q.GetId())}, 0
	case *prismv1.TraverseRequest:
		if t, ok := resp.(*prismv1.TraverseResponse); ok {
			return [][]byte{[]byte(q.GetStart())}, len(t.GetVertices())
		}
		return [][]byte{[]byte(q.GetStart())}, 0
	case *prismv1.ShortestPathRequest:
		return [][]byte{[]byte(q.GetFrom()), []byte(q.GetTo())}, 1
	case *prismv1.ScanRequest:
		if s, ok := resp.(*prismv1.ScanResponse); ok {
			return s.GetIds()[:min(len(s.GetIds()), maxAuditedIDs)], len(s.GetIds())
		}
	}
	return nil, 0
}

func eventCount(resp proto.Message) int {
	if e, ok := resp.(*prismv1.EventsResponse); ok {
		return len(e.GetEvents())
	}
	return 0
}

// WithSecurity turns authentication and authorization on: every request
// is attributed by s and checked against the namespace's policy.
func WithSecurity(s Security) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("gateway: nil security")
		}
		o.security = s
		return nil
	}
}

// WithAuditor records every request with a: the outcome of each one,
// refusals included. A write is acknowledged only once its record is
// stored, and no request is served while a is unhealthy.
func WithAuditor(a Auditor) Option {
	return func(o *options) error {
		if a == nil {
			return errors.New("gateway: nil auditor")
		}
		o.auditor = a
		return nil
	}
}
