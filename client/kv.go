package client

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// handle is what a KeyValue and a TimeSeries handle share: the namespace
// and the highest seq of the handle's writes.
type handle struct {
	c       *Client
	ns      string
	ryw     bool
	lastSeq atomic.Uint64
}

// HandleOption configures a KeyValue or TimeSeries handle.
type HandleOption func(*handle)

// KeyValueOption configures a KeyValue handle.
type KeyValueOption = HandleOption

// ReadYourWrites makes every read of the handle wait until the projection
// has applied the handle's latest write (its seq is sent as min_seq).
func ReadYourWrites() HandleOption { return func(h *handle) { h.ryw = true } }

func (h *handle) init(c *Client, ns string, opts []HandleOption) {
	h.c, h.ns = c, ns
	for _, o := range opts {
		o(h)
	}
}

// KeyValue is a handle on one KeyValue namespace. It is safe for concurrent
// use.
type KeyValue struct {
	handle
}

// KeyValue returns a handle on namespace ns.
func (c *Client) KeyValue(ns string, opts ...KeyValueOption) *KeyValue {
	kv := new(KeyValue)
	kv.init(c, ns, opts)
	return kv
}

// Item is one key/value pair of a record.
type Item struct {
	Key   []byte
	Value []byte
	// TTL, on writes: the item expires this long after the write.
	TTL time.Duration
	// ExpireTime, on reads: when the item expires (zero: never).
	ExpireTime time.Time
}

// Record is one page of a record's items.
type Record struct {
	ID    []byte
	Items []Item
	// Revision is the stream sequence of the record's last write; pass it to
	// IfRevision for a compare-and-swap.
	Revision uint64
	// NextPageToken is empty on the last page; pass it to PageToken.
	NextPageToken string
}

// WriteOption configures one write.
type WriteOption func(*writeOpts)

type writeOpts struct {
	token    string
	revision *uint64
}

// IdempotencyToken sets the write's idempotency token. By default every
// write gets a fresh random token, reused by the client's own retries.
func IdempotencyToken(token string) WriteOption { return func(o *writeOpts) { o.token = token } }

// IfRevision makes the write conditional: it fails with ErrConflict unless
// the record's revision equals rev (0: the record was never written).
func IfRevision(rev uint64) WriteOption {
	return func(o *writeOpts) { o.revision = &rev }
}

func newWriteOpts(opts []WriteOption) writeOpts {
	o := writeOpts{token: uuid.NewString()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func (h *handle) remember(seq uint64) { storeMax(&h.lastSeq, seq) }

// LastSeq is the highest stream sequence of this handle's writes.
func (h *handle) LastSeq() uint64 { return h.lastSeq.Load() }

func toProtoItems(items []Item) []*prismv1.Item {
	out := make([]*prismv1.Item, len(items))
	for i, it := range items {
		p := &prismv1.Item{Key: it.Key, Value: it.Value}
		if it.TTL != 0 {
			p.Ttl = durationpb.New(it.TTL)
		}
		out[i] = p
	}
	return out
}

func putRequest(id []byte, items []Item, o writeOpts) *prismv1.PutRequest {
	return &prismv1.PutRequest{Id: id, Items: toProtoItems(items), ExpectedRevision: o.revision, IdempotencyToken: o.token}
}

func deleteRequest(id []byte, keys [][]byte, o writeOpts) *prismv1.DeleteRequest {
	return &prismv1.DeleteRequest{Id: id, Keys: keys, ExpectedRevision: o.revision, IdempotencyToken: o.token}
}

// Put writes items of record id and returns the stream sequence of the
// stored event, which is the record's new revision. A value above
// MaxInlineValueBytes is uploaded in parts first (ADR 025); the record
// shows it only once the put is stored. Errors: ErrInvalidArgument,
// ErrConflict (IfRevision), ErrIdempotencyMismatch, ErrNamespaceNotFound,
// ErrUnavailable, ErrNotConsistentYet (strong namespace, stored but not yet
// applied; Error.Seq says where).
func (kv *KeyValue) Put(ctx context.Context, id []byte, items []Item, opts ...WriteOption) (uint64, error) {
	req := putRequest(id, items, newWriteOpts(opts))
	if err := kv.uploadLarge(ctx, req); err != nil {
		return 0, err
	}
	resp, err := kv.c.write(ctx, "put "+kv.ns, subjects.Write(kv.ns, "put"), req)
	if err != nil {
		return 0, err
	}
	kv.remember(resp.GetSeq())
	return resp.GetSeq(), nil
}

// Delete removes the listed keys of record id, or the whole record when no
// keys are given. It returns the stream sequence of the delete event.
func (kv *KeyValue) Delete(ctx context.Context, id []byte, keys [][]byte, opts ...WriteOption) (uint64, error) {
	resp, err := kv.c.write(ctx, "delete "+kv.ns, subjects.Write(kv.ns, "delete"), deleteRequest(id, keys, newWriteOpts(opts)))
	if err != nil {
		return 0, err
	}
	kv.remember(resp.GetSeq())
	return resp.GetSeq(), nil
}

// Mutation is one operation of Mutate: a put when Delete is false, else a
// delete of Keys (all of the record when Keys is empty).
type Mutation struct {
	ID     []byte
	Items  []Item   // put
	Delete bool     // delete instead of put
	Keys   [][]byte // delete: the keys, or none for the whole record
	// IfRevision, if not nil, makes this mutation (and so the whole batch)
	// conditional on the record's revision.
	IfRevision *uint64
}

// Mutate applies puts and deletes across records all or nothing and returns
// each mutation's stream sequence in order. As with Put, a value above
// MaxInlineValueBytes is uploaded in parts first (ADR 025); no record
// shows any of the mutate until it is stored. Errors: as Put; on
// ErrConflict (a stale IfRevision) nothing of the mutate is written.
func (kv *KeyValue) Mutate(ctx context.Context, muts []Mutation, opts ...WriteOption) ([]uint64, error) {
	o := newWriteOpts(opts)
	req := &prismv1.MutateRequest{IdempotencyToken: o.token}
	for _, m := range muts {
		mo := writeOpts{revision: m.IfRevision}
		if m.Delete {
			req.Mutations = append(req.Mutations, &prismv1.Mutation{Op: &prismv1.Mutation_Delete{Delete: deleteRequest(m.ID, m.Keys, mo)}})
			continue
		}
		put := putRequest(m.ID, m.Items, mo)
		if err := kv.uploadLarge(ctx, put); err != nil {
			return nil, err
		}
		req.Mutations = append(req.Mutations, &prismv1.Mutation{Op: &prismv1.Mutation_Put{Put: put}})
	}
	resp, err := kv.c.write(ctx, "mutate "+kv.ns, subjects.Write(kv.ns, "mutate"), req)
	if err != nil {
		return nil, err
	}
	kv.remember(resp.GetSeq())
	return resp.GetSeqs(), nil
}

// ReadOption configures one read.
type ReadOption func(*readOpts)

type readOpts struct {
	keys      [][]byte
	start     []byte
	end       []byte
	ranged    bool
	pageSize  uint32
	pageToken string
	minSeq    uint64

	// TimeSeries only.
	from, until time.Time
	timed       bool
	descending  bool
	series      []byte
	inSeries    bool
}

// keyValueOnly and timeSeriesOnly report options set that do not apply to
// the other abstraction, for an error message; "" when there are none.
func (o *readOpts) keyValueOnly() string {
	if len(o.keys) > 0 || o.ranged {
		return "Keys and KeyRange"
	}
	return ""
}

func (o *readOpts) timeSeriesOnly() string {
	if o.timed || o.descending || o.inSeries {
		return "Between, Descending and InSeries"
	}
	return ""
}

// Keys reads only the listed keys.
func Keys(keys ...[]byte) ReadOption { return func(o *readOpts) { o.keys = keys } }

// KeyRange reads keys in [start, end); a nil end is unbounded.
func KeyRange(start, end []byte) ReadOption {
	return func(o *readOpts) { o.start, o.end, o.ranged = start, end, true }
}

// PageSize sets the page size of a read (default 100, at most 1000).
func PageSize(n uint32) ReadOption { return func(o *readOpts) { o.pageSize = n } }

// PageToken continues from a previous page's NextPageToken.
func PageToken(token string) ReadOption { return func(o *readOpts) { o.pageToken = token } }

// MinSeq makes the read wait until the projection applied stream sequence
// seq (the seq a write returned).
func MinSeq(seq uint64) ReadOption { return func(o *readOpts) { o.minSeq = seq } }

func (h *handle) readOpts(opts []ReadOption) readOpts {
	var o readOpts
	if h.ryw {
		o.minSeq = h.lastSeq.Load()
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Get reads one page of record id's items in key order. Errors: ErrNotFound
// when the record has no live items, ErrNotConsistentYet when MinSeq was not
// reached in time, ErrInvalidArgument, ErrNamespaceNotFound, ErrUnavailable.
func (kv *KeyValue) Get(ctx context.Context, id []byte, opts ...ReadOption) (*Record, error) {
	o := kv.readOpts(opts)
	if bad := o.timeSeriesOnly(); bad != "" {
		return nil, misuse("get "+kv.ns, "%s apply to TimeSeries reads, not to Get", bad)
	}
	req := &prismv1.GetRequest{Id: id, Keys: o.keys, PageSize: o.pageSize, PageToken: o.pageToken, MinSeq: o.minSeq}
	if o.ranged {
		req.Range = &prismv1.KeyRange{Start: o.start, End: o.end}
	}
	resp, err := kv.getResolved(ctx, req)
	if err != nil {
		return nil, err
	}
	rec := &Record{ID: resp.GetId(), Revision: resp.GetRevision(), NextPageToken: resp.GetNextPageToken()}
	for _, it := range resp.GetItems() {
		item := Item{Key: it.GetKey(), Value: it.GetValue()}
		if it.GetExpireTime() != nil {
			item.ExpireTime = it.GetExpireTime().AsTime()
		}
		rec.Items = append(rec.Items, item)
	}
	return rec, nil
}

// GetAll reads every item of record id, following pages.
func (kv *KeyValue) GetAll(ctx context.Context, id []byte, opts ...ReadOption) (*Record, error) {
	var all *Record
	token := ""
	opts = slices.Clip(opts) // the appends below must not write into the caller's array
	for {
		rec, err := kv.Get(ctx, id, append(opts, PageToken(token))...)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = rec
		} else {
			all.Items = append(all.Items, rec.Items...)
			all.Revision = rec.Revision
		}
		if rec.NextPageToken == "" {
			all.NextPageToken = ""
			return all, nil
		}
		token = rec.NextPageToken
	}
}

// Scan returns one page of record ids in byte order and the token of the
// next page ("" on the last one).
func (kv *KeyValue) Scan(ctx context.Context, opts ...ReadOption) ([][]byte, string, error) {
	o := kv.readOpts(opts)
	bad := o.keyValueOnly()
	if bad == "" {
		bad = o.timeSeriesOnly()
	}
	if bad != "" {
		return nil, "", misuse("scan "+kv.ns, "%s do not apply to Scan", bad)
	}
	req := &prismv1.ScanRequest{PageSize: o.pageSize, PageToken: o.pageToken, MinSeq: o.minSeq}
	var resp prismv1.ScanResponse
	if err := kv.c.call(ctx, "scan "+kv.ns, subjects.Read(kv.ns, "scan"), req, &resp); err != nil {
		return nil, "", err
	}
	return resp.GetIds(), resp.GetNextPageToken(), nil
}
