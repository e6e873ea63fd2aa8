package client

import (
	"context"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Entity is a handle on one Entity namespace: records of one protobuf
// message, keyed by its (prism.index) = "primary" field. It is safe for
// concurrent use. protoc-gen-prism generates a typed client over it (Put,
// Get, Delete, QueryBy<Field>); see docs/entity.md.
type Entity struct {
	handle
}

// Entity returns a handle on entity namespace ns.
func (c *Client) Entity(ns string, opts ...HandleOption) *Entity {
	e := new(Entity)
	e.init(c, ns, opts)
	return e
}

// Put stores rec, a message of the namespace's type, replacing the record
// of its primary key, and returns the stream sequence of the stored event.
// Errors: ErrInvalidArgument (an empty primary key, a field the
// namespace's message does not have), ErrIdempotencyMismatch,
// ErrNamespaceNotFound, ErrFailedPrecondition (PII fields without a key
// on the server), ErrUnavailable, ErrNotConsistentYet.
func (e *Entity) Put(ctx context.Context, rec proto.Message, opts ...WriteOption) (uint64, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return 0, misuse("put "+e.ns, "marshal record: %v", err)
	}
	req := &prismv1.EntityPutRequest{Record: data, IdempotencyToken: newWriteOpts(opts).token}
	return e.store(ctx, "put", req)
}

// Delete deletes the record of primary key key (as text: a string key
// itself, an integer in decimal, bytes in base64) and returns the stream
// sequence of the delete event. Deleting a missing record is no error.
func (e *Entity) Delete(ctx context.Context, key string, opts ...WriteOption) (uint64, error) {
	return e.store(ctx, "delete", &prismv1.EntityDeleteRequest{Key: key, IdempotencyToken: newWriteOpts(opts).token})
}

func (e *Entity) store(ctx context.Context, op string, req proto.Message) (uint64, error) {
	resp, err := e.c.write(ctx, op+" "+e.ns, subjects.Write(e.ns, op), req)
	if err != nil {
		return 0, err
	}
	e.remember(resp.GetSeq())
	return resp.GetSeq(), nil
}

// Get reads the record of primary key key into into and returns its
// revision. PageSize and PageToken do not apply. Errors: ErrNotFound,
// ErrNotConsistentYet, ErrInvalidArgument, ErrNamespaceNotFound,
// ErrUnavailable.
func (e *Entity) Get(ctx context.Context, key string, into proto.Message, opts ...ReadOption) (uint64, error) {
	o := e.readOpts(opts)
	var resp prismv1.EntityGetResponse
	if err := e.c.call(ctx, "get "+e.ns, subjects.Read(e.ns, "get"), &prismv1.EntityGetRequest{Key: key, MinSeq: o.minSeq}, &resp); err != nil {
		return 0, err
	}
	if err := proto.Unmarshal(resp.GetRecord(), into); err != nil {
		return 0, misuse("get "+e.ns, "the record does not decode as %s: %v", into.ProtoReflect().Descriptor().FullName(), err)
	}
	return resp.GetRevision(), nil
}

// EntityQuery selects records of one secondary index: the index name and
// the bounds as text (see prismv1.EntityQueryRequest). An empty From is the
// lowest value, an empty To unbounded; Equal, when set, replaces both.
type EntityQuery struct {
	Index    string
	From, To string
	Equal    *string
	// Prefix, for a composite index, are the values of its first fields,
	// matched by equality; From, To and Equal apply to the next field.
	Prefix []string
}

// Query reads one page of the records q selects, in index order (then
// primary key), ascending unless Descending; PageSize, PageToken and
// MinSeq apply. It returns the raw records and revisions and the token of
// the next page ("" on the last). Generated clients decode the records;
// see QueryAs.
func (e *Entity) Query(ctx context.Context, q EntityQuery, opts ...ReadOption) ([]*prismv1.EntityGetResponse, string, error) {
	o := e.readOpts(opts)
	req := &prismv1.EntityQueryRequest{
		Index: q.Index, From: q.From, To: q.To, Equal: q.Equal, Prefix: q.Prefix, Descending: o.descending,
		PageSize: o.pageSize, PageToken: o.pageToken, MinSeq: o.minSeq,
	}
	var resp prismv1.EntityQueryResponse
	if err := e.c.call(ctx, "query "+e.ns, subjects.Read(e.ns, "query"), req, &resp); err != nil {
		return nil, "", err
	}
	return resp.GetRecords(), resp.GetNextPageToken(), nil
}

// QueryAs is Query with every record decoded into a new M.
func QueryAs[M proto.Message](ctx context.Context, e *Entity, q EntityQuery, newM func() M, opts ...ReadOption) ([]M, string, error) {
	recs, next, err := e.Query(ctx, q, opts...)
	if err != nil {
		return nil, "", err
	}
	out := make([]M, len(recs))
	for i, r := range recs {
		out[i] = newM()
		if err := proto.Unmarshal(r.GetRecord(), out[i]); err != nil {
			return nil, "", misuse("query "+e.ns, "a record does not decode as %s: %v", out[i].ProtoReflect().Descriptor().FullName(), err)
		}
	}
	return out, next, nil
}

// Lineage returns where the last change of the record of primary key key
// came from: its event id, stream sequence, time and principal. Errors: as
// Get.
func (e *Entity) Lineage(ctx context.Context, key string, opts ...ReadOption) (*prismv1.EntityLineage, error) {
	o := e.readOpts(opts)
	var resp prismv1.EntityGetResponse
	if err := e.c.call(ctx, "get "+e.ns, subjects.Read(e.ns, "get"), &prismv1.EntityGetRequest{Key: key, MinSeq: o.minSeq, Lineage: true}, &resp); err != nil {
		return nil, err
	}
	return resp.GetLineage(), nil
}
