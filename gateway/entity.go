package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// EntityReader is what the query handlers need from an entity namespace's
// primary target. Implementations must be safe for concurrent use. Their
// errors are answered UNAVAILABLE, except context errors and an
// InvalidArgumentError.
type EntityReader interface {
	// GetEntity returns the record of primary key id, nil when there is
	// none.
	GetEntity(ctx context.Context, id []byte) (*prismv1.EntityRecord, error)
	// ScanEntities returns one page of the records whose key in one index
	// is in a range, in (key, id) order.
	ScanEntities(ctx context.Context, req *prismv1.EntityScanRequest) (*prismv1.EntityScanResponse, error)
}

// Operations of the Entity abstraction, as <kind>.<op> of the request
// subject. Put, delete and get share their names with KeyValue's.
const (
	OpEntityQuery = subjects.KindRead + ".query"
)

func (g *Gateway) entityRoutes() []route {
	put := route{
		op: OpPut, spanName: "prism " + OpPut,
		newRequest: func() proto.Message { return new(prismv1.EntityPutRequest) },
		newFor:     func(ns *namespaceEntry) proto.Message { return ns.entity.put.New().Interface() },
		validate:   func(proto.Message) error { return nil },
		handle:     g.entityPut,
	}
	return []route{
		put,
		typedRoute(OpDelete, func() *prismv1.EntityDeleteRequest { return new(prismv1.EntityDeleteRequest) }, validateEntityDelete, g.entityDelete),
		typedRoute(OpGet, func() *prismv1.EntityGetRequest { return new(prismv1.EntityGetRequest) }, validateEntityGet, g.entityGet),
		typedRoute(OpEntityQuery, func() *prismv1.EntityQueryRequest { return new(prismv1.EntityQueryRequest) }, validateEntityQuery, g.entityQuery),
	}
}

// AddEntityNamespace registers the entity namespace ns, served by reader r
// with projection progress w, like AddNamespace. Its schema (message and
// descriptor set) is parsed once, here. It returns an error if ns is
// invalid or not an entity namespace, r or w is nil, or a namespace of
// that name is already registered.
func (g *Gateway) AddEntityNamespace(ns namespaces.Namespace, r EntityReader, w AppliedWaiter) error {
	if err := checkAdd(ns, namespaces.AbstractionEntity, r == nil || w == nil); err != nil {
		return err
	}
	t, err := newEntityType(ns)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return g.namespaces.add(&namespaceEntry{Namespace: t.withPII(ns.WithDefaults()), enReader: r, applied: w, entity: t, cache: &cacheSlot{}})
}

// withPII is ns with the PII fields of its message declared, so that the
// gateway's PII handling (keyed request hashes, read_pii) applies.
func (t *entityType) withPII(ns namespaces.Namespace) namespaces.Namespace {
	if len(t.schema.PII) > 0 {
		ns.PII = namespaces.NewPIIFields(t.schema.PII...)
	}
	return ns
}

// entityPut stores a put of the record in the request, keyed by its
// primary key field, with its secondary index entries. The record was
// decoded with the namespace's message type: an unknown field or a value
// of the wrong type is INVALID_ARGUMENT. Errors: as writeOne.
func (g *Gateway) entityPut(ctx context.Context, r *request) (proto.Message, error) {
	t := r.ns.entity
	env := r.msg.ProtoReflect()
	fields := env.Descriptor().Fields()
	recField, tokField := fields.ByName("record"), fields.ByName("idempotency_token")
	token := env.Get(tokField).String()
	if err := validateToken("idempotency_token", token); err != nil {
		return nil, err
	}
	if !env.Has(recField) {
		return nil, status.Invalidf("record is missing; send the %s to store", t.schema.Message.FullName())
	}
	rec := env.Get(recField).Message()
	if err := checkKnown(env, string(env.Descriptor().FullName())); err != nil {
		return nil, err
	}
	id, err := t.primaryKey(rec)
	if err != nil {
		return nil, err
	}
	r.entityID = id
	plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec.Interface())
	if err != nil {
		return nil, status.Invalidf("record: %v", err)
	}
	ev := &prismv1.EntityEvent{Id: id, Record: plain}
	for _, ix := range t.schema.Indexes {
		key, ok, err := g.recordIndexKey(ctx, r, ix, rec)
		if err != nil {
			return nil, err
		}
		if ok {
			ev.Indexes = append(ev.Indexes, &prismv1.IndexEntry{Index: ix.Name, Key: key})
		}
	}
	req := &prismv1.EntityPutRequest{Record: plain, IdempotencyToken: token}
	if t.hasUnique() {
		return g.putUnique(ctx, r, req, ev, rec)
	}
	return g.writeOne(ctx, r, singleWrite{
		req: req, token: token, record: id, unit: "fields",
		event: func(meta subjects.EventMeta) (*nats.Msg, error) {
			sealed, err := g.sealEntity(ctx, r, id, rec)
			if err != nil {
				return nil, err
			}
			if sealed != nil {
				ev.Record = sealed
			}
			return subjects.NewEntityEvent(meta, ev)
		},
	})
}

// entityDelete stores a delete of the record of a primary key.
func (g *Gateway) entityDelete(ctx context.Context, r *request, req *prismv1.EntityDeleteRequest) (proto.Message, error) {
	id, err := r.ns.entity.parseKey(req.GetKey())
	if err != nil {
		return nil, err
	}
	ev := &prismv1.EntityEvent{Id: id, Delete: true}
	return g.writeOne(ctx, r, singleWrite{
		req: req, token: req.GetIdempotencyToken(), record: id, unit: "keys",
		event: func(meta subjects.EventMeta) (*nats.Msg, error) { return subjects.NewEntityEvent(meta, ev) },
	})
}

// entityGet reads the record of a primary key. Errors: NOT_FOUND,
// NOT_CONSISTENT_YET, UNAVAILABLE.
func (g *Gateway) entityGet(ctx context.Context, r *request, req *prismv1.EntityGetRequest) (proto.Message, error) {
	t := r.ns.entity
	id, err := t.parseKey(req.GetKey())
	if err != nil {
		return nil, err
	}
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	rec, err := g.readEntity(ctx, r, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, status.Newf(prismv1.Code_NOT_FOUND, "namespace %s has no record with %s %q", r.ns.Name, t.schema.Primary.Name(), req.GetKey())
	}
	m := t.get.New()
	if err := g.fillRecord(ctx, r, m, rec, req.GetLineage()); err != nil {
		return nil, err
	}
	return m.Interface(), nil
}

// readEntity reads the stored record id, from the read cache when the
// namespace has one (the record as stored: PII is opened per caller
// after). Errors: UNAVAILABLE.
func (g *Gateway) readEntity(ctx context.Context, r *request, id []byte) (*prismv1.EntityRecord, error) {
	var cache *readCache
	if r.ns.cache != nil {
		cache = r.ns.cache.get()
	}
	if cache != nil {
		rec := cache.getEntity(id)
		g.metrics.observeCache(r.ns.Name, rec != nil)
		if rec != nil {
			return rec, nil
		}
	}
	readFrom := r.ns.applied.Applied()
	rec, err := r.ns.enReader.GetEntity(ctx, id)
	if err != nil {
		return nil, readError(err, r.ns.Name, "get")
	}
	if cache != nil && rec != nil {
		cache.putEntity(id, rec, readFrom)
	}
	return rec, nil
}

// entityQuery reads one page of the records in a range of a secondary
// index. Errors: INVALID_ARGUMENT (unknown index, bad bound),
// NOT_CONSISTENT_YET, UNAVAILABLE.
func (g *Gateway) entityQuery(ctx context.Context, r *request, req *prismv1.EntityQueryRequest) (proto.Message, error) {
	t := r.ns.entity
	ix, ok := t.schema.Index(req.GetIndex())
	if !ok {
		if len(t.schema.Indexes) == 0 {
			return nil, status.Invalidf("namespace %s has no secondary index; mark a field of %s [(prism.index) = \"secondary\"] to query by it", r.ns.Name, t.schema.Message.FullName())
		}
		return nil, status.Invalidf("namespace %s has no index %q; its indexes are %s (a query without an index would scan every record, and is refused)", r.ns.Name, req.GetIndex(), strings.Join(t.schema.IndexNames(), ", "))
	}
	scan := &prismv1.EntityScanRequest{Index: ix.Name, Descending: req.GetDescending(), PageSize: req.GetPageSize(), PageToken: req.GetPageToken()}
	var err error
	if scan.From, scan.To, err = g.queryRange(ctx, r, ix, req); err != nil {
		return nil, err
	}
	if err := g.waitMinSeq(ctx, r, req.GetMinSeq()); err != nil {
		return nil, err
	}
	page := t.query.New()
	if scan.To != nil && string(scan.From) >= string(scan.To) {
		return page.Interface(), nil
	}
	resp, err := r.ns.enReader.ScanEntities(ctx, scan)
	if err != nil {
		return nil, readError(err, r.ns.Name, "query")
	}
	fields := page.Descriptor().Fields()
	list := page.Mutable(fields.ByName("records")).List()
	for _, rec := range resp.GetRecords() {
		m := list.NewElement()
		if err := g.fillRecord(ctx, r, m.Message(), rec, req.GetLineage()); err != nil {
			return nil, err
		}
		list.Append(m)
	}
	if tok := resp.GetNextPageToken(); tok != "" {
		page.Set(fields.ByName("next_page_token"), protoreflect.ValueOfString(tok))
	}
	return page.Interface(), nil
}

// fillRecord sets the record and revision (and with lineage the lineage)
// of the EntityGetResponse envelope m from the stored rec, PII opened or
// masked for the caller.
func (g *Gateway) fillRecord(ctx context.Context, r *request, m protoreflect.Message, rec *prismv1.EntityRecord, lineage bool) error {
	t := r.ns.entity
	fields := m.Descriptor().Fields()
	out := t.record.New()
	if err := proto.Unmarshal(rec.GetRecord(), out.Interface()); err != nil {
		return &status.Error{Code: prismv1.Code_INTERNAL, Message: fmt.Sprintf("a stored record of namespace %s does not decode as %s", r.ns.Name, t.schema.Message.FullName()), Err: err}
	}
	if err := g.revealEntity(ctx, r, rec.GetId(), out); err != nil {
		return err
	}
	m.Set(fields.ByName("record"), protoreflect.ValueOfMessage(out))
	m.Set(fields.ByName("revision"), protoreflect.ValueOfUint64(rec.GetRevision()))
	if lineage && rec.GetLineage() != nil {
		m.Set(fields.ByName("lineage"), protoreflect.ValueOfMessage(rec.GetLineage().ProtoReflect()))
	}
	return nil
}

func validateEntityDelete(req *prismv1.EntityDeleteRequest) error {
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateEntityGet(*prismv1.EntityGetRequest) error { return nil }

func validateEntityQuery(req *prismv1.EntityQueryRequest) error {
	if req.GetIndex() == "" {
		return status.Invalidf("index is empty; name the secondary index to query")
	}
	if err := validatePageSize(req.GetPageSize()); err != nil {
		return err
	}
	return validatePageToken(req.GetPageToken())
}

// recordIndexKey is the key of record rec in index ix; ok is false when a
// field of the index with presence is unset (no entry).
func (g *Gateway) recordIndexKey(ctx context.Context, r *request, ix namespaces.EntityIndex, rec protoreflect.Message) (key []byte, ok bool, err error) {
	if !ix.Blind {
		key, ok = plainIndexKey(ix, rec)
		return key, ok, nil
	}
	if fd := ix.Field; fd.HasPresence() && !rec.Has(fd) {
		return nil, false, nil
	}
	key, err = g.blindKey(ctx, r, ix, rec.Get(ix.Field))
	return key, err == nil, err
}

// plainIndexKey is the key of record rec in index ix, which is not
// blind; ok is false when a field of the index with presence is unset.
func plainIndexKey(ix namespaces.EntityIndex, rec protoreflect.Message) (key []byte, ok bool) {
	for _, fd := range ix.Fields {
		if fd.HasPresence() && !rec.Has(fd) {
			return nil, false
		}
	}
	if len(ix.Fields) == 1 {
		return indexKey(ix.Field, rec.Get(ix.Field)), true
	}
	for _, fd := range ix.Fields {
		key = componentKey(key, fd, rec.Get(fd))
	}
	return key, true
}

// queryRange turns the bounds of a query of index ix into the raw key
// range [from, to) (nil to: unbounded). Errors: INVALID_ARGUMENT for a
// bound that does not parse, equal with from or to, a range on a blind
// index, or a prefix that does not fit the index.
func (g *Gateway) queryRange(ctx context.Context, r *request, ix namespaces.EntityIndex, req *prismv1.EntityQueryRequest) (from, to []byte, err error) {
	prefix := req.GetPrefix()
	if len(prefix) >= len(ix.Fields) {
		return nil, nil, status.Invalidf("index %s has %d field(s); a prefix gives values for fewer of them (%d given), and equal, from and to the next", ix.Name, len(ix.Fields), len(prefix))
	}
	if ix.Blind && req.Equal == nil {
		return nil, nil, status.Invalidf("index %s is a blind index of the PII field %s: it holds keyed hashes, not values, so it answers equal only", ix.Name, ix.Field.Name())
	}
	if req.Equal != nil && (req.GetFrom() != "" || req.GetTo() != "") {
		return nil, nil, status.Invalidf("equal and from/to are both set; give one")
	}
	parse := func(what, text string, fd protoreflect.FieldDescriptor) (protoreflect.Value, error) {
		v, err := parseValue(fd, text)
		if err != nil {
			return v, status.Invalidf("%s %q: %v", what, text, err)
		}
		return v, nil
	}
	composite := len(ix.Fields) > 1
	var p []byte
	for i, text := range prefix {
		v, err := parse(fmt.Sprintf("prefix[%d]", i), text, ix.Fields[i])
		if err != nil {
			return nil, nil, err
		}
		p = componentKey(p, ix.Fields[i], v)
	}
	next := ix.Fields[len(prefix)]
	key := func(v protoreflect.Value) ([]byte, error) {
		if composite {
			return componentKey(append([]byte(nil), p...), next, v), nil
		}
		return g.entityIndexKey(ctx, r, ix, v)
	}
	if req.Equal != nil {
		v, err := parse("equal", req.GetEqual(), next)
		if err != nil {
			return nil, nil, err
		}
		if from, err = key(v); err != nil {
			return nil, nil, err
		}
		if composite {
			return from, prefixEnd(from), nil
		}
		// The successor of a key in byte order is the key and a zero byte.
		return from, append(append([]byte{}, from...), 0), nil
	}
	from, to = p, prefixEnd(p)
	if text := req.GetFrom(); text != "" {
		v, err := parse("from", text, next)
		if err != nil {
			return nil, nil, err
		}
		if from, err = key(v); err != nil {
			return nil, nil, err
		}
	}
	if text := req.GetTo(); text != "" {
		v, err := parse("to", text, next)
		if err != nil {
			return nil, nil, err
		}
		if to, err = key(v); err != nil {
			return nil, nil, err
		}
	}
	return from, to, nil
}
