package gateway

import (
	"context"
	"encoding/base64"
	"errors"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
)

// PII fields of an entity namespace ((prism.pii) on a string field) are
// sealed like a KeyValue item's value (ADR 016): the record key of the
// record's primary key seals each value, bound to the namespace, the
// record and the field name, and the record in the event holds the
// ciphertext in base64 in place of the value. Reads open them for callers
// with read_pii and mask them (or leave them out) for the others.

// sealEntity returns rec marshalled with its PII fields sealed, or nil
// when the namespace's message has none. rec is not changed. Errors: as
// sealKey (FAILED_PRECONDITION without a keyring, UNAVAILABLE).
func (g *Gateway) sealEntity(ctx context.Context, r *request, id []byte, rec protoreflect.Message) ([]byte, error) {
	s := r.ns.entity.schema
	if len(s.PII) == 0 {
		return nil, nil
	}
	rk, err := g.sealKey(ctx, r, id)
	if err != nil {
		return nil, err
	}
	out := proto.Clone(rec.Interface()).ProtoReflect()
	for _, f := range s.PII {
		fd := s.Message.Fields().ByName(protoreflect.Name(f.Name))
		v := out.Get(fd).String()
		if v == "" {
			continue
		}
		out.Set(fd, protoreflect.ValueOfString(base64.StdEncoding.EncodeToString(rk.Seal(f.Name, []byte(v)))))
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(out.Interface())
}

// revealEntity opens the PII fields of the stored record m of id in
// place, for a caller with read_pii, and masks them (or clears them, with
// pii_redaction omit) for any other. A value of a forgotten record is
// cleared. Errors: as openValue.
func (g *Gateway) revealEntity(ctx context.Context, r *request, id []byte, m protoreflect.Message) error {
	s := r.ns.entity.schema
	if len(s.PII) == 0 {
		return nil
	}
	plain := g.mayReadPII(r)
	omit := r.ns.PIIRedaction == namespaces.RedactOmit
	keys := map[pii.Header]*pii.RecordKey{}
	for _, f := range s.PII {
		fd := s.Message.Fields().ByName(protoreflect.Name(f.Name))
		stored := m.Get(fd).String()
		if stored == "" {
			continue
		}
		if !plain && omit {
			m.Clear(fd)
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(stored)
		if err != nil {
			raw = []byte(stored) // written before the field was PII
		}
		v, err := g.openValue(ctx, r, id, f.Name, raw, keys)
		if errors.Is(err, pii.ErrForgotten) {
			m.Clear(fd)
			continue
		}
		if err != nil {
			return err
		}
		text := string(v)
		if !plain {
			text = pii.Mask(f.Kind, text)
		}
		m.Set(fd, protoreflect.ValueOfString(text))
	}
	return nil
}

// entityIndexKey is the key of value v in index ix: indexKey's encoding,
// or for a blind index (on a PII field) the keyed hash (HMAC-SHA256 under
// the namespace's request-hash key, stable across key rotations) of the
// index name and the value, so that no index, claim subject or backend
// row holds the value. Errors: as sealKey.
func (g *Gateway) entityIndexKey(ctx context.Context, r *request, ix namespaces.EntityIndex, v protoreflect.Value) ([]byte, error) {
	if !ix.Blind {
		return indexKey(ix.Field, v), nil
	}
	return g.blindKey(ctx, r, ix, v)
}

// blindKey is the key of value v in the blind index ix.
func (g *Gateway) blindKey(ctx context.Context, r *request, ix namespaces.EntityIndex, v protoreflect.Value) ([]byte, error) {
	k, err := g.keyringFor(r.ns.Name)
	if err != nil {
		return nil, err
	}
	h, err := k.RequestHasher(ctx, r.ns.Name)
	if err != nil {
		return nil, keyError(err, r.ns.Name)
	}
	return h.HashRequest([]byte("prism.entity.blind-index\x00" + ix.Name + "\x00" + v.String())), nil
}
