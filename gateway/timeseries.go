package gateway

import (
	"context"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// TimeSeriesReader is what the query handlers need from a timeseries
// namespace's primary target. Implementations must be safe for concurrent
// use. Their errors are answered UNAVAILABLE, except context errors and an
// InvalidArgumentError (say, for a page token they did not make).
type TimeSeriesReader interface {
	// ReadRange returns one page of a series' events in the request's time
	// range, in (event_time, event_id) order, ascending unless descending.
	// A series without events yields an empty page, not an error.
	ReadRange(ctx context.Context, req *prismv1.ReadRangeRequest) (*prismv1.EventsResponse, error)
	// Search returns one page of the events whose tags include every tag of
	// the request, in (event_time, series_id, event_id) order.
	Search(ctx context.Context, req *prismv1.SearchRequest) (*prismv1.EventsResponse, error)
}

// Operations of the TimeSeries abstraction, as <kind>.<op> of the request
// subject.
const (
	OpAppend = subjects.KindWrite + ".append"
	OpRange  = subjects.KindRead + ".range"
	OpSearch = subjects.KindRead + ".search"
)

func (g *Gateway) timeSeriesRoutes() []route {
	return []route{
		typedRoute(OpAppend, func() *prismv1.AppendRequest { return new(prismv1.AppendRequest) }, validateAppendRequest, g.appendEvents),
		typedRoute(OpRange, func() *prismv1.ReadRangeRequest { return new(prismv1.ReadRangeRequest) }, validateReadRangeRequest, g.readRange),
		typedRoute(OpSearch, func() *prismv1.SearchRequest { return new(prismv1.SearchRequest) }, validateSearchRequest, g.search),
	}
}

// appendEvents stores the events of an append as one event on the series'
// subject, like a put: the idempotency token is the Nats-Msg-Id, a retry
// with the same body is a duplicate of the original seq, with another body
// IDEMPOTENCY_MISMATCH. Appending an event that is already stored (same
// series, event time and event id) is not an error; the projection keeps
// the first. Errors: as writeOne.
func (g *Gateway) appendEvents(ctx context.Context, r *request, req *prismv1.AppendRequest) (proto.Message, error) {
	return g.writeOne(ctx, r, singleWrite{
		req: req, token: req.GetIdempotencyToken(), record: req.GetSeriesId(), unit: "events",
		event: func(meta subjects.EventMeta) (*nats.Msg, error) {
			ev, err := g.appendEvent(ctx, r, req)
			if err != nil {
				return nil, err
			}
			return subjects.NewTimeSeriesEvent(meta, ev)
		},
	})
}

// readRange returns one page of a series' events. Errors: NOT_CONSISTENT_YET
// (min_seq not applied in time), UNAVAILABLE.
func (g *Gateway) readRange(ctx context.Context, r *request, req *prismv1.ReadRangeRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	resp, err := r.ns.tsReader.ReadRange(ctx, req)
	if err != nil {
		return nil, readError(err, r.ns.Name, "range read")
	}
	return g.revealPage(ctx, r, resp)
}

// search returns one page of the events matching the request's tags.
// Errors: NOT_CONSISTENT_YET, UNAVAILABLE; for a PII tag (searchTokens)
// PERMISSION_DENIED without read_pii, INVALID_ARGUMENT without series_id.
func (g *Gateway) search(ctx context.Context, r *request, req *prismv1.SearchRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	if r.hasPII() {
		var err error
		if req, err = g.searchTokens(ctx, r, req); err != nil {
			return nil, err
		}
		if req == nil {
			return &prismv1.EventsResponse{}, nil
		}
	}
	resp, err := r.ns.tsReader.Search(ctx, req)
	if err != nil {
		return nil, readError(err, r.ns.Name, "search")
	}
	return g.revealPage(ctx, r, resp)
}
