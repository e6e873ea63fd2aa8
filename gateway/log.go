package gateway

import (
	"context"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// LogReader is what the query handlers need from a log namespace's primary
// target. Implementations must be safe for concurrent use. Their errors
// are answered UNAVAILABLE, except context errors and an
// InvalidArgumentError (a partition the log does not have, an offset out
// of range).
type LogReader interface {
	// Fetch returns the records of one partition (or of the partition of
	// req.Key) from req.Offset on, in offset order, at most max_records
	// and below end_offset when set. Reading at the partition's end yields
	// an empty page, not an error.
	Fetch(ctx context.Context, req *prismv1.LogFetchRequest) (*prismv1.LogFetchResponse, error)
}

// Operations of the Log abstraction, as <kind>.<op> of the request subject.
// A log append shares its subject with a TimeSeries append; the
// namespace's abstraction decides which request it is.
const (
	OpLogAppend = subjects.KindWrite + ".append"
	OpFetch     = subjects.KindRead + ".fetch"
)

func (g *Gateway) logRoutes() []route {
	return []route{
		typedRoute(OpLogAppend, func() *prismv1.LogAppendRequest { return new(prismv1.LogAppendRequest) }, validateLogAppendRequest, g.appendRecord),
		typedRoute(OpFetch, func() *prismv1.LogFetchRequest { return new(prismv1.LogFetchRequest) }, validateLogFetchRequest, g.fetch),
	}
}

// appendRecord stores a Log append as one event on its key's subject, like
// a put: the idempotency token is the Nats-Msg-Id, a retry with the same
// body is a duplicate of the original seq, with another body
// IDEMPOTENCY_MISMATCH. Errors: as writeOne.
func (g *Gateway) appendRecord(ctx context.Context, r *request, req *prismv1.LogAppendRequest) (proto.Message, error) {
	ev := &prismv1.LogEvent{Key: req.GetKey(), Value: req.GetValue(), Headers: req.GetHeaders()}
	return g.writeOne(ctx, r, singleWrite{
		req: req, token: req.GetIdempotencyToken(), record: req.GetKey(), unit: "bytes",
		event: func(meta subjects.EventMeta) (*nats.Msg, error) { return subjects.NewLogEvent(meta, ev) },
	})
}

// fetch returns one page of a partition. Errors: INVALID_ARGUMENT (a
// partition or offset the log does not have), NOT_CONSISTENT_YET,
// UNAVAILABLE.
func (g *Gateway) fetch(ctx context.Context, r *request, req *prismv1.LogFetchRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	resp, err := r.ns.logReader.Fetch(ctx, req)
	if err != nil {
		return nil, readError(err, r.ns.Name, "fetch")
	}
	return resp, nil
}

// AddLogNamespace registers the log namespace ns, served by reader r with
// projection progress w, like AddNamespace. It returns an error if ns is
// invalid or not a log namespace, r or w is nil, or a namespace of that
// name is already registered.
func (g *Gateway) AddLogNamespace(ns namespaces.Namespace, r LogReader, w AppliedWaiter) error {
	if err := checkAdd(ns, namespaces.AbstractionLog, r == nil || w == nil); err != nil {
		return err
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.WithDefaults(), logReader: r, applied: w})
}
