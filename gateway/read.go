package gateway

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// Reads come from the namespace's primary projection as it is. A read with
// min_seq > 0 first waits, bounded by the consistency wait, until the
// projection applied that sequence; this works in every consistency mode.
// Strong namespaces need no more: their writes reply only after the
// projection applied them.

// get returns one page of a record's items. Errors: NOT_FOUND for a record
// that was never written or is deleted, NOT_CONSISTENT_YET, UNAVAILABLE.
func (g *Gateway) get(ctx context.Context, r *request, req *prismv1.GetRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	var cache *readCache
	if r.ns.cache != nil && cacheable(req) {
		cache = r.ns.cache.get()
	}
	var resp *prismv1.GetResponse
	if cache != nil {
		resp = cache.get(req.GetId())
		g.metrics.observeCache(r.ns.Name, resp != nil)
	}
	if resp == nil {
		readFrom := r.ns.applied.Applied()
		var err error
		if resp, err = r.ns.reader.GetItems(ctx, req); err != nil {
			return nil, readError(err, r.ns.Name, "get")
		}
		// Large values are kept by the value cache, bounded in bytes; the
		// read cache is bounded in records.
		if cache != nil && !hasLarge(resp) {
			cache.put(req.GetId(), resp, readFrom)
		}
		g.sampleShadow(r.ns, req, resp, readFrom)
	}
	if resp.GetRevision() == 0 && len(resp.GetItems()) == 0 {
		return nil, status.Newf(prismv1.Code_NOT_FOUND, "record %q not found in namespace %s", req.GetId(), r.ns.Name)
	}
	g.cacheLarge(r.ns.Name, resp)
	resp, err := g.revealItems(ctx, r, resp)
	if err != nil {
		return nil, err
	}
	return chunkLarge(resp), nil
}

// scan returns one page of record ids. Errors: NOT_CONSISTENT_YET,
// UNAVAILABLE.
func (g *Gateway) scan(ctx context.Context, r *request, req *prismv1.ScanRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	resp, err := r.ns.reader.ScanIDs(ctx, req)
	if err != nil {
		return nil, readError(err, r.ns.Name, "scan")
	}
	return resp, nil
}

func (g *Gateway) waitMinSeq(ctx context.Context, r *request, minSeq uint64) error {
	if minSeq == 0 {
		return nil
	}
	err := g.waitApplied(ctx, r.ns, r.ns.applied, minSeq, waitMinSeqRead)
	var e *status.Error
	if errors.As(err, &e) && e.Code == prismv1.Code_NOT_CONSISTENT_YET {
		e.Message = fmt.Sprintf("namespace %s has applied writes up to seq %d, not yet min_seq %d, within %v; retry later", r.ns.Name, r.ns.applied.Applied(), minSeq, g.opts.consistencyWait)
	}
	return err
}

// InvalidArgumentError is implemented by backend errors that blame the
// request rather than the backend, such as a page token the backend did not
// make. A read that fails with one (anywhere in its chain, found with
// errors.As) whose InvalidArgument reports true is answered with
// INVALID_ARGUMENT instead of UNAVAILABLE, since retrying cannot help.
type InvalidArgumentError interface {
	error
	InvalidArgument() bool
}

// IndexNotReadyError is implemented by backend errors of a query of an
// entity index that is not filled yet (a live prism apply added it and
// the backend is building it from the stored records) or whose build
// failed. Its message says which and how far; the query is answered
// FAILED_PRECONDITION rather than with partial results.
type IndexNotReadyError interface {
	error
	IndexNotReady() bool
}

// readError maps a backend error. The backend's own error types are not
// known here; a failed read is UNAVAILABLE unless the context ended or the
// error is an InvalidArgumentError or an IndexNotReadyError.
func readError(err error, ns, op string) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var nr IndexNotReadyError
	if errors.As(err, &nr) && nr.IndexNotReady() {
		return &status.Error{Code: prismv1.Code_FAILED_PRECONDITION, Message: fmt.Sprintf("the %s of namespace %s: %v", op, ns, nr), Err: err}
	}
	var ia InvalidArgumentError
	if errors.As(err, &ia) && ia.InvalidArgument() {
		return &status.Error{Code: prismv1.Code_INVALID_ARGUMENT, Message: fmt.Sprintf("the %s of namespace %s was refused by its backend: %v", op, ns, err), Err: err}
	}
	// The cause is logged, not sent: backend errors name hosts, tables and
	// SQL that callers cannot act on.
	return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("the %s of namespace %s failed in its backend; retry with backoff", op, ns), Err: err}
}
