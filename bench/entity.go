package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	prismopts "github.com/prism-data/prism/proto/prism"
)

// entityPage is the page size, and the width of the index range, of the
// entity scenario's queries.
const entityPage = 100

// benchRecord is the message of the entity scenario's namespace:
//
//	message BenchRecord {
//	  string id = 1 [(prism.index) = "primary"];
//	  int64 at = 2 [(prism.index) = "secondary"];
//	  bytes payload = 3;
//	}
//
// built at run time, so that the bench needs no generated code of its
// own.
func benchRecord() (protoreflect.MessageDescriptor, error) {
	opts := func(index string) *descriptorpb.FieldOptions {
		o := &descriptorpb.FieldOptions{}
		proto.SetExtension(o, prismopts.E_Index, index)
		return o
	}
	field := func(name string, n int32, t descriptorpb.FieldDescriptorProto_Type, o *descriptorpb.FieldOptions) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(n), Type: t.Enum(),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Options: o}
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("prism/bench/bench_record.proto"), Package: proto.String("prism.bench"), Syntax: proto.String("proto3"),
		Dependency: []string{prismopts.File_prism_options_proto.Path()},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("BenchRecord"), Field: []*descriptorpb.FieldDescriptorProto{
			field("id", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, opts(prismopts.IndexPrimary)),
			field("at", 2, descriptorpb.FieldDescriptorProto_TYPE_INT64, opts("secondary")),
			field("payload", 3, descriptorpb.FieldDescriptorProto_TYPE_BYTES, nil),
		}}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		return nil, err
	}
	return fd.Messages().Get(0), nil
}

// entityNamespace is the entity namespace the scenario loads beside the
// keyvalue one, kv: the same backend and consistency.
func entityNamespace(kv namespaces.Namespace) (namespaces.Namespace, error) {
	md, err := benchRecord()
	if err != nil {
		return namespaces.Namespace{}, err
	}
	cfg, err := namespaces.EntityConfigOf(md)
	if err != nil {
		return namespaces.Namespace{}, err
	}
	return namespaces.Namespace{Name: kv.Name + "_en", Abstraction: namespaces.AbstractionEntity, Backend: kv.Backend, Consistency: kv.Consistency,
		Needs: kv.Needs, Entity: cfg}, nil
}

// entityTarget is the entity namespace of a run of the entity scenario.
type entityTarget struct {
	en  *client.Entity
	typ protoreflect.MessageType
	md  protoreflect.MessageDescriptor
}

// openEntity returns the handle on the entity namespace ns of c, once the
// embedded Prism serves it (it was seeded with the keyvalue one).
func openEntity(ctx context.Context, c *client.Client, ns string) (*entityTarget, error) {
	md, err := benchRecord()
	if err != nil {
		return nil, err
	}
	t := &entityTarget{en: c.Entity(ns), typ: dynamicpb.NewMessageType(md), md: md}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := t.en.Get(ctx, "bench-none", t.typ.New().Interface())
		if errors.Is(err, client.ErrNotFound) {
			return t, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("entity namespace %s: %w", ns, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record is BenchRecord i with payload.
func (t *entityTarget) record(i int, payload []byte) proto.Message {
	m := t.typ.New()
	f := t.md.Fields()
	m.Set(f.ByName("id"), protoreflect.ValueOfString(string(benchID(i))))
	m.Set(f.ByName("at"), protoreflect.ValueOfInt64(int64(i)))
	m.Set(f.ByName("payload"), protoreflect.ValueOfBytes(payload))
	return m.Interface()
}

// runEntity measures, one after the other and each for cfg.Duration,
// entity and keyvalue puts, entity and keyvalue gets (one item of the same
// payload), and queries of a range of the entity's secondary index (a
// page of entityPage records): the series en-put, kv-put, en-get, kv-get
// and en-query of one run. Both namespaces are filled
// with cfg.Keys records first.
func runEntity(ctx context.Context, cfg Config, t *benchTarget, items []client.Item, progress io.Writer) (RunResult, error) {
	et := t.en
	payload := items[0].Value
	if err := prefillEntity(ctx, t, cfg, payload, progress); err != nil {
		return RunResult{}, err
	}
	if err := prefill(ctx, t, cfg, items, progress); err != nil {
		return RunResult{}, err
	}
	timed := func(series string, f func(ctx context.Context, w *worker) error) opFunc {
		return func(ctx context.Context, w *worker, start time.Time) {
			err := f(ctx, w)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				w.fail(series, err)
				return
			}
			w.observe(series, time.Since(start))
		}
	}
	span := max(cfg.Keys-entityPage, 1)
	// The put phases note their last sequence; the next phase starts once
	// the projection applied it, so that no phase pays for another's
	// backlog.
	var enSeq, kvSeq atomic.Uint64
	settle := map[string]func(ctx context.Context) error{
		"en-put": func(ctx context.Context) error {
			return entityVisible(ctx, et, benchID(0), enSeq.Load())
		},
		"kv-put": func(ctx context.Context) error { return waitVisible(ctx, t.kv, benchID(0), kvSeq.Load()) },
	}
	phases := []struct {
		series string
		op     func(ctx context.Context, w *worker) error
	}{
		{"en-put", func(ctx context.Context, w *worker) error {
			seq, err := et.en.Put(ctx, et.record(w.key(), payload))
			storeMax(&enSeq, seq)
			return err
		}},
		{"kv-put", func(ctx context.Context, w *worker) error {
			seq, err := t.kv.Put(ctx, benchID(w.key()), items)
			storeMax(&kvSeq, seq)
			return err
		}},
		{"en-get", func(ctx context.Context, w *worker) error {
			_, err := et.en.Get(ctx, string(benchID(w.key())), et.typ.New().Interface())
			return err
		}},
		{"kv-get", func(ctx context.Context, w *worker) error {
			_, err := t.kv.Get(ctx, benchID(w.key()))
			return err
		}},
		{"en-query", func(ctx context.Context, w *worker) error {
			from := w.rng.IntN(span)
			recs, _, err := et.en.Query(ctx, client.EntityQuery{Index: "at", From: strconv.Itoa(from), To: strconv.Itoa(from + entityPage)}, client.PageSize(entityPage))
			if err == nil && len(recs) != min(entityPage, cfg.Keys) {
				err = fmt.Errorf("a query of %d values found %d records", entityPage, len(recs))
			}
			return err
		}},
	}
	res := RunResult{Name: "prism", Note: fmt.Sprintf("entity: a BenchRecord (string id, indexed int64 at, %d-byte payload); queries read a page of %d of an index range; keyvalue: one item of the same payload; each phase starts once the projection applied the puts before it", len(payload), entityPage)}
	for _, p := range phases {
		if ctx.Err() != nil {
			break
		}
		l := newLoad("prism "+p.series, cfg)
		l.series, l.op = []string{p.series}, timed(p.series, p.op)
		r := l.run(ctx, progress)
		res.ElapsedSeconds += r.ElapsedSeconds
		res.Series = append(res.Series, r.Series...)
		if f := settle[p.series]; f != nil && ctx.Err() == nil {
			if err := f(ctx); err != nil {
				return RunResult{}, fmt.Errorf("after %s: %w", p.series, err)
			}
		}
	}
	return res, nil
}

// entityVisible waits until the entity namespace's projection applied
// seq.
func entityVisible(ctx context.Context, et *entityTarget, id []byte, seq uint64) error {
	for {
		_, err := et.en.Get(ctx, string(id), et.typ.New().Interface(), client.MinSeq(seq))
		if err == nil || errors.Is(err, client.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, client.ErrNotConsistentYet) {
			return err
		}
	}
}

// prefillEntity puts every record of cfg.Keys once and waits until the
// projection shows them.
func prefillEntity(ctx context.Context, t *benchTarget, cfg Config, payload []byte, progress io.Writer) error {
	return fillIDs(ctx, cfg, progress, "entity records", 1, min(cfg.Concurrency, 32), func(ctx context.Context, from, _ int) (uint64, error) {
		return t.en.en.Put(ctx, t.en.record(from, payload))
	}, func(ctx context.Context, seq uint64) error { return entityVisible(ctx, t.en, benchID(cfg.Keys-1), seq) })
}
