package gateway

import (
	"context"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Operations of the KeyValue abstraction, as <kind>.<op> of the request
// subject. A subject with any other operation gets UNIMPLEMENTED.
const (
	OpPut    = subjects.KindWrite + ".put"
	OpDelete = subjects.KindWrite + ".delete"
	OpMutate = subjects.KindWrite + ".mutate"
	OpGet    = subjects.KindRead + ".get"
	OpScan   = subjects.KindRead + ".scan"
)

func (g *Gateway) keyValueRoutes() []route {
	return []route{
		typedRoute(OpPut, func() *prismv1.PutRequest { return new(prismv1.PutRequest) }, validatePutRequest, g.put),
		typedRoute(OpDelete, func() *prismv1.DeleteRequest { return new(prismv1.DeleteRequest) }, validateDeleteRequest, g.delete),
		typedRoute(OpMutate, func() *prismv1.MutateRequest { return new(prismv1.MutateRequest) }, validateMutateRequest, g.mutate),
		typedRoute(OpGet, func() *prismv1.GetRequest { return new(prismv1.GetRequest) }, validateGetRequest, g.get),
		typedRoute(OpScan, func() *prismv1.ScanRequest { return new(prismv1.ScanRequest) }, validateScanRequest, g.scan),
		typedRoute(OpUpload, func() *prismv1.UploadRequest { return new(prismv1.UploadRequest) }, validateUploadRequest, g.upload),
		typedRoute(OpUploadPart, func() *prismv1.UploadPartRequest { return new(prismv1.UploadPartRequest) }, validateUploadPartRequest, g.uploadPart),
		typedRoute(OpGetValue, func() *prismv1.GetValueRequest { return new(prismv1.GetValueRequest) }, validateGetValueRequest, g.getValue),
	}
}

func deleteEvent(req *prismv1.DeleteRequest) *prismv1.KeyValueEvent {
	return &prismv1.KeyValueEvent{Id: req.GetId(), Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{Keys: req.GetKeys()}}}
}

// eventMeta is the envelope metadata of the events of request r. Their
// traceparent is the request span's, from ctx, so that their projection
// continues the request's trace.
func (g *Gateway) eventMeta(ctx context.Context, r *request, token string, req proto.Message) (subjects.EventMeta, error) {
	hash, err := g.requestHash(ctx, r, req)
	if err != nil {
		return subjects.EventMeta{}, err
	}
	return subjects.EventMeta{
		Namespace:        r.ns.Name,
		IdempotencyToken: token,
		RequestHash:      hash,
		TraceParent:      traceParent(ctx),
		Principal:        r.principal.Name,
		Time:             g.opts.clock(),
	}, nil
}
