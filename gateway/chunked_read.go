package gateway

import (
	"context"
	"crypto/sha256"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// chunkLarge returns resp with every value above MaxValueBytes replaced by
// a ChunkedValue of its size and SHA-256, which the caller reads with
// OpGetValue: a reply must stay under the NATS max_payload. resp itself
// (it may be cached) is not changed.
func chunkLarge(resp *prismv1.GetResponse) *prismv1.GetResponse {
	if !hasLarge(resp) {
		return resp
	}
	out := &prismv1.GetResponse{Id: resp.GetId(), Revision: resp.GetRevision(), NextPageToken: resp.GetNextPageToken(), Items: make([]*prismv1.Item, len(resp.GetItems()))}
	for i, it := range resp.GetItems() {
		if len(it.GetValue()) <= MaxValueBytes {
			out.Items[i] = it
			continue
		}
		sum := sha256.Sum256(it.GetValue())
		out.Items[i] = &prismv1.Item{Key: it.GetKey(), ExpireTime: it.GetExpireTime(), Chunked: &prismv1.ChunkedValue{Size: uint64(len(it.GetValue())), Sha256: sum[:]}}
	}
	return out
}

func validateGetValueRequest(req *prismv1.GetValueRequest) error {
	if err := validateID("id", req.GetId()); err != nil {
		return err
	}
	if err := validateKey("key", req.GetKey()); err != nil {
		return err
	}
	if req.GetLength() > MaxPartBytes {
		return status.Invalidf("length %d is above the largest slice, %d", req.GetLength(), MaxPartBytes)
	}
	return validateRevision("revision", &req.Revision)
}

// getValue returns a slice of the value of one item, as the caller may see
// it (PII opened or masked). Errors: NOT_FOUND, CONFLICT when the record
// is no longer at req.revision, INVALID_ARGUMENT for an offset past the
// end, and those of get.
func (g *Gateway) getValue(ctx context.Context, r *request, req *prismv1.GetValueRequest) (proto.Message, error) {
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	var resp *prismv1.GetResponse
	ck := valueKey{r.ns.Name, string(req.GetId()), string(req.GetKey()), req.GetRevision()}
	if v, ok := g.values.get(ck); ok && ck.revision != 0 {
		resp = &prismv1.GetResponse{Id: req.GetId(), Revision: ck.revision, Items: []*prismv1.Item{{Key: req.GetKey(), Value: v}}}
	} else {
		var err error
		if resp, err = r.ns.reader.GetItems(ctx, &prismv1.GetRequest{Id: req.GetId(), Keys: [][]byte{req.GetKey()}}); err != nil {
			return nil, readError(err, r.ns.Name, "value read")
		}
		g.cacheLarge(r.ns.Name, resp)
	}
	if rev := req.GetRevision(); rev != 0 && resp.GetRevision() != rev {
		return nil, status.Newf(prismv1.Code_CONFLICT, "record %q is at revision %d, not %d: it changed while its value was read; read it again", req.GetId(), resp.GetRevision(), rev)
	}
	resp, err := g.revealItems(ctx, r, resp)
	if err != nil {
		return nil, err
	}
	if len(resp.GetItems()) == 0 {
		return nil, status.Newf(prismv1.Code_NOT_FOUND, "item %q of record %q not found in namespace %s", req.GetKey(), req.GetId(), r.ns.Name)
	}
	v := resp.GetItems()[0].GetValue()
	off := req.GetOffset()
	if off > uint64(len(v)) {
		return nil, status.Invalidf("offset %d is past the end of the value (%d bytes)", off, len(v))
	}
	n := uint64(req.GetLength())
	if n == 0 {
		n = MaxPartBytes
	}
	end := min(off+n, uint64(len(v)))
	return &prismv1.GetValueResponse{Data: v[off:end], Size: uint64(len(v)), Revision: resp.GetRevision()}, nil
}

// cacheLarge keeps the large values of resp, as stored, for the slice
// reads that follow.
func (g *Gateway) cacheLarge(ns string, resp *prismv1.GetResponse) {
	for _, it := range resp.GetItems() {
		if len(it.GetValue()) > MaxValueBytes {
			g.values.put(valueKey{ns, string(resp.GetId()), string(it.GetKey()), resp.GetRevision()}, it.GetValue())
		}
	}
}

// hasLarge reports whether resp holds a value above MaxValueBytes.
func hasLarge(resp *prismv1.GetResponse) bool {
	for _, it := range resp.GetItems() {
		if len(it.GetValue()) > MaxValueBytes {
			return true
		}
	}
	return false
}
