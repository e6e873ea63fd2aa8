package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Idempotency beyond the duplicate window (ADR 025). JetStream stores a
// retry once only within its duplicate window (Nats-Msg-Id, 2 minutes). A
// namespace whose retry horizon is longer has a token bucket: after a
// write with a token is stored, the gateway records "seq hash" under the
// token (asynchronously, see rememberWrite), with the horizon as the
// bucket's TTL, and looks the token up before publishing the next write
// that carries it.

// tokens returns the token bucket of namespace ns, looked up once; nil
// when the namespace remembers tokens for the duplicate window only.
func (g *Gateway) tokens(ctx context.Context, ns *namespaceEntry) (jetstream.KeyValue, error) {
	if ns.RetryHorizon() <= namespaces.DuplicateWindow {
		return nil, nil
	}
	g.streamsMu.Lock()
	kv, ok := g.tokenKVs[ns.Name]
	g.streamsMu.Unlock()
	if ok {
		return kv, nil
	}
	kv, err := g.js.KeyValue(ctx, subjects.TokenBucket(ns.Name))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// Applied before token buckets existed: the duplicate window
		// holds until the namespace is applied again.
		g.log.Warn("namespace has no idempotency token bucket; tokens hold for the duplicate window only: apply the namespace again", "namespace", ns.Name)
		return nil, nil
	}
	if err != nil {
		return nil, status.FromJetStream(err, ns.Name, "looking up the idempotency tokens")
	}
	g.streamsMu.Lock()
	g.tokenKVs[ns.Name] = kv
	g.streamsMu.Unlock()
	return kv, nil
}

// rememberedWrite returns the reply of the earlier write with token, when
// the token bucket holds it: a duplicate when hash matches, else
// IDEMPOTENCY_MISMATCH. nil, nil: not remembered.
func (g *Gateway) rememberedWrite(ctx context.Context, r *request, token, hash string) (*prismv1.WriteResponse, error) {
	kv, err := g.tokens(ctx, r.ns)
	if kv == nil || err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, subjects.TokenKey(token))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, status.FromJetStream(err, r.ns.Name, "looking up the idempotency token")
	}
	seqText, stored, _ := strings.Cut(string(e.Value()), " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return nil, status.Newf(prismv1.Code_INTERNAL, "the record of idempotency token %q is malformed", token)
	}
	if stored != hash {
		return nil, mismatchError(token, seq)
	}
	return &prismv1.WriteResponse{Seq: seq, Duplicate: true}, nil
}

// tokenMaxPending bounds the token records in flight; beyond it a write
// waits for room (bounded memory).
const tokenMaxPending = 4096

// newTokenJS is the JetStream handle token records are published with,
// asynchronously: a failure is logged, since the write it belongs to is
// already answered.
func newTokenJS(nc *nats.Conn, log *slog.Logger) (jetstream.JetStream, error) {
	return jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(tokenMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			log.Warn("an idempotency token was not remembered; a retry of its write after the duplicate window would be stored again", "subject", m.Subject, "err", err)
		}))
}

// rememberWrite records that the write with token and hash is stored at
// seq, without waiting for the server: the write is answered meanwhile.
// That is no weaker than waiting, since a gateway that stops between
// storing a write and recording its token leaves it to the duplicate
// window either way, and that covers the retry of a client that got no
// reply. A record that cannot even be queued is UNAVAILABLE naming seq:
// the write is stored, and a retry with the same token is deduplicated.
func (g *Gateway) rememberWrite(ctx context.Context, r *request, token, hash string, seq uint64) error {
	kv, err := g.tokens(ctx, r.ns)
	if err == nil && kv != nil {
		_, err = g.tokenJS.PublishAsync(subjects.TokenSubject(r.ns.Name, token), []byte(strconv.FormatUint(seq, 10)+" "+hash))
	}
	if err != nil {
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Seq: seq, Message: fmt.Sprintf("the write is stored at seq %d, but its idempotency token could not be remembered for the retry horizon: retry with the same token now", seq), Err: err}
	}
	return nil
}

// waitTokens waits, bounded by ctx, until the token records in flight are
// stored (Drain).
func (g *Gateway) waitTokens(ctx context.Context) {
	select {
	case <-g.tokenJS.PublishAsyncComplete():
	case <-ctx.Done():
		g.log.Warn("drain: idempotency tokens still being remembered", "pending", g.tokenJS.PublishAsyncPending())
	}
}
