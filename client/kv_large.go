package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Large values (ADR 025): Put and Mutate upload a value above
// MaxInlineValueBytes in parts before the write that names it, and Get
// reads a value the gateway returns as a reference slice by slice,
// checking its size and SHA-256. Callers see whole values either way.

// MaxInlineValueBytes is the largest value sent inside a put or a get
// reply; larger ones (up to the gateway's limit, 64 MiB by default) go in
// parts of at most this size.
const MaxInlineValueBytes = 512 << 10

// largeGetAttempts bounds how often Get starts over when the record
// changes while a large value is read.
const largeGetAttempts = 3

// uploadLarge replaces every item of req whose value is above
// MaxInlineValueBytes by a ChunkedValue, uploading the value first.
func (kv *KeyValue) uploadLarge(ctx context.Context, req *prismv1.PutRequest) error {
	for _, it := range req.GetItems() {
		if len(it.GetValue()) <= MaxInlineValueBytes {
			continue
		}
		ref, err := kv.upload(ctx, req.GetId(), it.GetKey(), it.GetValue())
		if err != nil {
			return err
		}
		it.Value, it.Chunked = nil, ref
	}
	return nil
}

func (kv *KeyValue) upload(ctx context.Context, id, key, value []byte) (*prismv1.ChunkedValue, error) {
	op := "upload " + kv.ns
	var up prismv1.UploadResponse
	if err := kv.c.callRetry(ctx, op, subjects.Write(kv.ns, "upload"), &prismv1.UploadRequest{Id: id, Key: key, Size: uint64(len(value))}, &up); err != nil {
		return nil, err
	}
	size := int(up.GetMaxPartBytes())
	if size <= 0 || size > MaxInlineValueBytes {
		size = MaxInlineValueBytes
	}
	for i, off := 0, 0; off < len(value); i, off = i+1, off+size {
		part := &prismv1.UploadPartRequest{UploadId: up.GetUploadId(), Id: id, Key: key, Index: uint32(i), Data: value[off:min(off+size, len(value))]}
		var resp prismv1.UploadPartResponse
		if err := kv.c.callRetry(ctx, "upload part "+kv.ns, subjects.Write(kv.ns, "part"), part, &resp); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(value)
	return &prismv1.ChunkedValue{UploadId: up.GetUploadId(), Size: uint64(len(value)), Sha256: sum[:]}, nil
}

// readLarge fills in the value of every item of resp the gateway returned
// as a ChunkedValue. It returns ErrConflict when the record changed
// meanwhile; the caller reads the record again.
func (kv *KeyValue) readLarge(ctx context.Context, resp *prismv1.GetResponse, minSeq uint64) error {
	for _, it := range resp.GetItems() {
		ref := it.GetChunked()
		if ref == nil {
			continue
		}
		op := "get value " + kv.ns
		v := make([]byte, 0, ref.GetSize())
		for uint64(len(v)) < ref.GetSize() {
			req := &prismv1.GetValueRequest{Id: resp.GetId(), Key: it.GetKey(), Revision: resp.GetRevision(), Offset: uint64(len(v)), MinSeq: minSeq}
			var slice prismv1.GetValueResponse
			if err := kv.c.call(ctx, op, subjects.Read(kv.ns, "value"), req, &slice); err != nil {
				return err
			}
			if len(slice.GetData()) == 0 || slice.GetSize() != ref.GetSize() {
				return &Error{Op: op, Code: prismv1.Code_CONFLICT, Message: "the value changed while it was read"}
			}
			v = append(v, slice.GetData()...)
		}
		if sum := sha256.Sum256(v); !bytes.Equal(sum[:], ref.GetSha256()) {
			return &Error{Op: op, Code: prismv1.Code_CONFLICT, Message: "the value read does not have the SHA-256 the gateway announced"}
		}
		it.Value, it.Chunked = v, nil
	}
	return nil
}

// getResolved is a get whose large values are read in full; it starts over
// when the record changes while they are read.
func (kv *KeyValue) getResolved(ctx context.Context, req *prismv1.GetRequest) (*prismv1.GetResponse, error) {
	for attempt := 1; ; attempt++ {
		var resp prismv1.GetResponse
		if err := kv.c.call(ctx, "get "+kv.ns, subjects.Read(kv.ns, "get"), req, &resp); err != nil {
			return nil, err
		}
		err := kv.readLarge(ctx, &resp, req.GetMinSeq())
		if err == nil {
			return &resp, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == largeGetAttempts {
			return nil, err
		}
	}
}
