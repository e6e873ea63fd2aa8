package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// PII fields (ADR 016). The gateway seals the value of every item whose
// key is a declared PII field before the event is published, so the
// stream and every copy made from it hold ciphertext only; it opens them
// on read, for callers with read_pii, and shows the others the mask of the
// field's kind, or nothing, as the namespace declares.

// WithKeyring gives the gateway the PII keys. Without one, writes to a
// namespace that declares PII fields are refused (FAILED_PRECONDITION).
func WithKeyring(k *pii.Keyring) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("gateway: nil keyring")
		}
		o.keyring = k
		return nil
	}
}

// hasPII reports whether the request's namespace declares PII fields.
func (r *request) hasPII() bool { return r.ns != nil && !r.ns.PII.IsZero() }

// keyringFor returns the keyring for a namespace with PII fields, or the
// error its writes are refused with.
func (g *Gateway) keyringFor(ns string) (*pii.Keyring, error) {
	if g.opts.keyring == nil {
		return nil, status.Newf(prismv1.Code_FAILED_PRECONDITION, "namespace %s declares PII fields, and this gateway has no key encryption key to encrypt them: start prism serve with --pii-kek", ns)
	}
	return g.opts.keyring, nil
}

// keyError maps a keyring failure: the key bucket or the KMS did not
// answer. Nothing was written.
func keyError(err error, ns string) error {
	return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("the PII keys of namespace %s cannot be read now; nothing was changed: retry with backoff", ns), Err: err}
}

// putEvent is the event of a put written at now (the event's ce-time):
// items with an absolute expire_time instead of a ttl, so that a replay
// yields the same state, the values of PII fields sealed, and uploaded
// large values checked and referenced (commitUpload).
func (g *Gateway) putEvent(ctx context.Context, r *request, req *prismv1.PutRequest, now time.Time) (*prismv1.KeyValueEvent, error) {
	var rk *pii.RecordKey
	items := make([]*prismv1.Item, len(req.GetItems()))
	for i, it := range req.GetItems() {
		item := &prismv1.Item{Key: it.GetKey(), Value: it.GetValue()}
		if ttl := it.GetTtl(); ttl != nil {
			item.ExpireTime = timestamppb.New(now.Add(ttl.AsDuration()))
		}
		if c := it.GetChunked(); c != nil {
			ref, err := g.commitUpload(ctx, r, req.GetId(), it.GetKey(), c, &rk)
			if err != nil {
				return nil, err
			}
			item.Chunked = ref
		} else if _, ok := r.ns.PII.Kind(string(it.GetKey())); ok {
			if rk == nil {
				var err error
				if rk, err = g.sealKey(ctx, r, req.GetId()); err != nil {
					return nil, err
				}
			}
			item.Value = rk.Seal(string(it.GetKey()), it.GetValue())
		}
		items[i] = item
	}
	return &prismv1.KeyValueEvent{Id: req.GetId(), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: items}}}, nil
}

func (g *Gateway) sealKey(ctx context.Context, r *request, id []byte) (*pii.RecordKey, error) {
	k, err := g.keyringFor(r.ns.Name)
	if err != nil {
		return nil, err
	}
	rk, err := k.SealKey(ctx, r.ns.Name, id)
	if err != nil {
		return nil, keyError(err, r.ns.Name)
	}
	return rk, nil
}

// requestHash is the hash stored with a write's events to recognise its
// retry. In a namespace with PII fields it is keyed (HMAC under the
// namespace's first data key), so that nobody reading the stream can test
// a guessed PII value against it; elsewhere a plain SHA-256.
func (g *Gateway) requestHash(ctx context.Context, r *request, req proto.Message) (string, error) {
	if !r.hasPII() {
		return subjects.HashRequest(req)
	}
	k, err := g.keyringFor(r.ns.Name)
	if err != nil {
		return "", err
	}
	h, err := k.RequestHasher(ctx, r.ns.Name)
	if err != nil {
		return "", keyError(err, r.ns.Name)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("hash request: %w", err)
	}
	return "hmac-" + hex.EncodeToString(h.HashRequest(b)), nil
}

// mayReadPII reports whether the caller of r sees PII in plaintext.
// Without security (development mode) everyone does.
func (g *Gateway) mayReadPII(r *request) bool {
	sec := g.opts.security
	return sec == nil || sec.Authorize(r.principal, r.ns.Name, auth.ReadPII) == nil
}

// revealItems returns resp with the values of PII fields opened for a
// caller with read_pii, masked or left out for any other. Items whose
// record was forgotten are left out. resp itself (it may be cached) is
// not changed. Errors: UNAVAILABLE when the keys cannot be read,
// INTERNAL for a sealed value that does not open (changed bytes).
func (g *Gateway) revealItems(ctx context.Context, r *request, resp *prismv1.GetResponse) (*prismv1.GetResponse, error) {
	if !r.hasPII() {
		return resp, nil
	}
	items, err := g.revealList(ctx, r, resp.GetId(), resp.GetItems(), nil)
	if err != nil {
		return nil, err
	}
	return &prismv1.GetResponse{Id: resp.GetId(), Revision: resp.GetRevision(), NextPageToken: resp.GetNextPageToken(), Items: items}, nil
}

// revealList returns the items of record id as the caller of r may see
// them (revealItems), in a new slice; the items given are not changed.
// A value that does not open is an INTERNAL error, or, when undecryptable
// is set, left out after undecryptable is told its field.
func (g *Gateway) revealList(ctx context.Context, r *request, id []byte, items []*prismv1.Item, undecryptable func(field string)) ([]*prismv1.Item, error) {
	plain := g.mayReadPII(r)
	omit := r.ns.PIIRedaction == namespaces.RedactOmit
	out := make([]*prismv1.Item, 0, len(items))
	keys := map[pii.Header]*pii.RecordKey{} // one derivation per key the record's values name
	for _, it := range items {
		field := string(it.GetKey())
		kind, ok := r.ns.PII.Kind(field)
		if !ok {
			out = append(out, it)
			continue
		}
		if !plain && omit {
			continue
		}
		v, err := g.openValue(ctx, r, id, field, it.GetValue(), keys)
		if errors.Is(err, pii.ErrForgotten) {
			continue
		}
		var se *status.Error
		if undecryptable != nil && errors.As(err, &se) && se.Code == prismv1.Code_INTERNAL {
			undecryptable(field)
			continue
		}
		if err != nil {
			return nil, err
		}
		if !plain {
			v = []byte(pii.Mask(kind, string(v)))
		}
		out = append(out, &prismv1.Item{Key: it.GetKey(), Value: v, ExpireTime: it.GetExpireTime()})
	}
	return out, nil
}

// openValue opens the sealed value of field of record id. A value that is
// not sealed was written before the field was declared PII: it is
// returned as stored (and masked like any other for callers without
// read_pii). keys holds the record keys already derived for id.
func (g *Gateway) openValue(ctx context.Context, r *request, id []byte, field string, value []byte, keys map[pii.Header]*pii.RecordKey) ([]byte, error) {
	h, err := pii.Inspect(value)
	if err != nil {
		return value, nil
	}
	rk := keys[h]
	if rk == nil {
		k, kerr := g.keyringFor(r.ns.Name)
		if kerr != nil {
			return nil, kerr
		}
		rk, err = k.OpenKey(ctx, r.ns.Name, id, h)
		if errors.Is(err, pii.ErrForgotten) {
			return nil, err
		}
		if err == nil {
			keys[h] = rk
		}
	}
	var v []byte
	if err == nil {
		v, err = rk.Open(field, value)
		if errors.Is(err, pii.ErrMalformed) {
			return value, nil
		}
	}
	if err != nil && !errors.Is(err, pii.ErrDecrypt) && !errors.Is(err, pii.ErrOtherSecret) {
		return nil, keyError(err, r.ns.Name)
	}
	if err != nil {
		// Changed bytes or a value moved from another record: never shown.
		return nil, &status.Error{Code: prismv1.Code_INTERNAL, Message: fmt.Sprintf("a PII value of record %q in namespace %s does not decrypt: it was changed or moved from another record", id, r.ns.Name), Err: err}
	}
	return v, nil
}
