package projectors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// ErrChunkedUnresolved is returned by a KeyValue projector whose target was
// not wrapped by ResolveChunks when a change references a large value: it
// would store an empty value. The projector retries; nothing is
// dead-lettered.
var ErrChunkedUnresolved = errors.New("a change references a large value and the projector cannot resolve it: wrap the target with projectors.ResolveChunks")

// errMissingPart blames a change whose large value is not (or no longer)
// in the blob stream: it is dead-lettered.
type errMissingPart struct{ msg string }

func (e errMissingPart) Error() string   { return e.msg }
func (e errMissingPart) Permanent() bool { return true }

// ResolveChunks returns t wrapped so that every item of a change that
// references a large value (prismv1.ChunkedValue, ADR 025) carries the
// whole value, read from the blob stream of namespace ns, before t applies
// it. Any KeyValue projection that may see large values (every one built
// by node and replay) must use it.
//
// Errors of ApplyKeyValue: t's; a JetStream failure (transient, the
// projector retries); a part that is missing (permanent: the change is
// dead-lettered).
func ResolveChunks(js jetstream.JetStream, ns string, t KeyValueTarget) KeyValueTarget {
	return &chunkResolver{KeyValueTarget: t, js: js, ns: ns, maxBytes: maxResolvedBatchBytes}
}

type chunkResolver struct {
	KeyValueTarget
	js       jetstream.JetStream
	ns       string
	maxBytes uint64 // maxResolvedBatchBytes but in tests

	mu     sync.Mutex
	stream jetstream.Stream
}

// maxResolvedBatchBytes bounds the large-value bytes one ApplyKeyValue
// call of the wrapped target holds: a batch whose resolved values would
// exceed it is applied in several calls, each with its own checkpoint (the
// seq of its last change), so a batch of many 64 MiB values does not hold
// them all at once. A crash between two calls leaves the checkpoint at the
// end of the first; the rest is applied again, as after any crash.
const maxResolvedBatchBytes = 128 << 20

func (c *chunkResolver) ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	out := make([]*prismv1.KeyValueChange, 0, len(changes))
	held := uint64(0)
	for i, ch := range changes {
		if !hasChunked(ch.GetEvent()) {
			out = append(out, ch)
			continue
		}
		size := chunkedBytes(ch.GetEvent())
		if held > 0 && held+size > c.maxBytes {
			if err := c.KeyValueTarget.ApplyKeyValue(ctx, out, changes[i-1].GetSeq()); err != nil {
				return err
			}
			out, held = out[:0], 0
		}
		resolved, err := c.resolve(ctx, ch)
		if err != nil {
			return fmt.Errorf("resolve the large value of the change at seq %d: %w", ch.GetSeq(), err)
		}
		out = append(out, resolved)
		held += size
	}
	return c.KeyValueTarget.ApplyKeyValue(ctx, out, through)
}

// chunkedBytes is the size of the large values of ev.
func chunkedBytes(ev *prismv1.KeyValueEvent) uint64 {
	var n uint64
	for _, it := range items(ev) {
		n += it.GetChunked().GetSize()
	}
	return n
}

// items returns the items of a put or replace event.
func items(ev *prismv1.KeyValueEvent) []*prismv1.Item {
	if p := ev.GetPut(); p != nil {
		return p.GetItems()
	}
	return ev.GetReplace().GetItems()
}

func hasChunked(ev *prismv1.KeyValueEvent) bool {
	for _, it := range items(ev) {
		if it.GetChunked() != nil {
			return true
		}
	}
	return false
}

// resolve returns a copy of ch whose chunked items hold their values.
func (c *chunkResolver) resolve(ctx context.Context, ch *prismv1.KeyValueChange) (*prismv1.KeyValueChange, error) {
	out := proto.CloneOf(ch)
	for _, it := range items(out.GetEvent()) {
		ref := it.GetChunked()
		if ref == nil {
			continue
		}
		v, err := c.read(ctx, ref)
		if err != nil {
			return nil, err
		}
		it.Value, it.Chunked = v, nil
	}
	return out, nil
}

func (c *chunkResolver) blobs(ctx context.Context) (jetstream.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil {
		return c.stream, nil
	}
	s, err := c.js.Stream(ctx, subjects.BlobStream(c.ns))
	if err != nil {
		return nil, fmt.Errorf("blob stream of %s: %w", c.ns, err)
	}
	c.stream = s
	return s, nil
}

// read assembles the value ref points at: the first stored copy of each
// part 0 to ref.Parts-1, read from ref.FirstSeq on.
func (c *chunkResolver) read(ctx context.Context, ref *prismv1.ChunkedValue) ([]byte, error) {
	s, err := c.blobs(ctx)
	if err != nil {
		return nil, err
	}
	if err := subjects.ValidateUploadID(ref.GetUploadId()); err != nil {
		return nil, errMissingPart{err.Error()}
	}
	subj := subjects.Blob(c.ns, ref.GetUploadId())
	n := ref.GetParts()
	parts := make([][]byte, n)
	found := uint32(0)
	for seq := max(ref.GetFirstSeq(), 1); found < n; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, errMissingPart{fmt.Sprintf("blob %s has %d of its %d parts", ref.GetUploadId(), found, n)}
		}
		if err != nil {
			return nil, fmt.Errorf("read a part of blob %s: %w", ref.GetUploadId(), err)
		}
		seq = m.Sequence + 1
		i, err := strconv.ParseUint(m.Header.Get(subjects.HeaderPart), 10, 32)
		if err != nil || i >= uint64(n) || parts[i] != nil {
			continue // a later copy of a retried part, or a stray
		}
		parts[i] = m.Data
		found++
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	v := make([]byte, 0, size)
	for _, p := range parts {
		v = append(v, p...)
	}
	return v, nil
}
