package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Large values (ADR 025). A value above MaxValueBytes is uploaded in parts
// to the namespace's blob stream (upload, then part requests), then put
// with a ChunkedValue naming the upload: the gateway reads the parts back,
// checks that they are all there and add up to the declared size and
// SHA-256, and publishes a put event that references them. The projector
// resolves the reference into the whole value before its backend sees it.
// Until the put event is stored, no reader can see any part; parts no put
// names are collected after namespaces.UploadHorizon.

const (
	// OpUpload starts an upload; OpUploadPart stores one part of it;
	// OpGetValue reads a slice of a large value.
	OpUpload     = subjects.KindWrite + ".upload"
	OpUploadPart = subjects.KindWrite + ".part"
	OpGetValue   = subjects.KindRead + ".value"

	// MaxPartBytes is the largest part of an upload and the largest slice a
	// value read returns: in JSON (base64) it stays under the NATS
	// server's default max_payload of 1 MiB.
	MaxPartBytes = 512 << 10
	// headerBlobItem, on a part, binds it to the record and item key it was
	// uploaded for (a hash of both).
	headerBlobItem = "Prism-Blob-Item"
)

// WithMaxChunkedValueBytes sets the largest value an upload may hold
// (default namespaces.MaxChunkedValueBytes, 64 MiB).
func WithMaxChunkedValueBytes(n int) Option {
	return func(o *options) error {
		if n < MaxValueBytes {
			return fmt.Errorf("gateway: max chunked value bytes %d is below the inline limit %d", n, MaxValueBytes)
		}
		o.maxChunkedBytes = n
		return nil
	}
}

// blobItem is the value of headerBlobItem for item key of record id.
func blobItem(id, key []byte) string {
	h := sha256.New()
	h.Write([]byte(strconv.Itoa(len(id))))
	h.Write([]byte{0})
	h.Write(id)
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))
}

// partField is the PII field name a part is sealed under: the item key
// bound to the upload and the part's place, so a part cannot be moved.
func partField(key []byte, upload string, index uint32) string {
	return string(key) + "\x00part\x00" + upload + "\x00" + strconv.FormatUint(uint64(index), 10)
}

func validateUploadRequest(req *prismv1.UploadRequest) error {
	if err := validateID("id", req.GetId()); err != nil {
		return err
	}
	if err := validateKey("key", req.GetKey()); err != nil {
		return err
	}
	if req.GetSize() == 0 {
		return status.Invalidf("size is 0; declare the size of the whole value (values up to %d bytes are put inline)", MaxValueBytes)
	}
	return nil
}

func validateUploadPartRequest(req *prismv1.UploadPartRequest) error {
	if err := subjects.ValidateUploadID(req.GetUploadId()); err != nil {
		return status.Invalidf("%v", err)
	}
	if err := validateID("id", req.GetId()); err != nil {
		return err
	}
	if err := validateKey("key", req.GetKey()); err != nil {
		return err
	}
	if n := len(req.GetData()); n == 0 || n > MaxPartBytes {
		return status.Invalidf("part %d of upload %s has %d bytes; a part has 1 to %d", req.GetIndex(), req.GetUploadId(), n, MaxPartBytes)
	}
	return nil
}

// validateChunked checks the ChunkedValue of item n of a put.
func validateChunked(prefix string, n int, it *prismv1.Item) error {
	c := it.GetChunked()
	if len(it.GetValue()) > 0 {
		return status.Invalidf("%sitem %d sets both value and chunked; a chunked value is uploaded in parts", prefix, n)
	}
	if err := subjects.ValidateUploadID(c.GetUploadId()); err != nil {
		return status.Invalidf("%sitem %d: chunked.%v", prefix, n, err)
	}
	if c.GetSize() == 0 {
		return status.Invalidf("%sitem %d: chunked.size is 0", prefix, n)
	}
	if len(c.GetSha256()) != sha256.Size {
		return status.Invalidf("%sitem %d: chunked.sha256 is %d bytes; it is the %d-byte SHA-256 of the whole value", prefix, n, len(c.GetSha256()), sha256.Size)
	}
	if c.GetParts() != 0 || c.GetFirstSeq() != 0 {
		return status.Invalidf("%sitem %d: chunked.parts and chunked.first_seq are set by Prism; leave them empty", prefix, n)
	}
	return nil
}

// checkLargeValues refuses a large value in a namespace whose backend
// cannot store one, or one above the gateway's limit.
func (g *Gateway) checkLargeValue(r *request, size uint64) error {
	if r.ns.Backend == "natskv" {
		return status.Invalidf("namespace %s is on natskv, whose values are bounded by the NATS max_payload: values above %d bytes are not supported there (use sqlite or postgres)", r.ns.Name, MaxValueBytes)
	}
	if size > uint64(g.opts.maxChunkedBytes) {
		return status.Invalidf("the value is %d bytes; the limit is %d", size, g.opts.maxChunkedBytes)
	}
	return nil
}

func (g *Gateway) maxParts() uint32 {
	return uint32((g.opts.maxChunkedBytes + MaxPartBytes - 1) / MaxPartBytes)
}

// upload starts an upload. It stores nothing: the upload is its parts.
func (g *Gateway) upload(_ context.Context, r *request, req *prismv1.UploadRequest) (proto.Message, error) {
	if err := g.checkLargeValue(r, req.GetSize()); err != nil {
		return nil, err
	}
	return &prismv1.UploadResponse{
		UploadId:     strings.ReplaceAll(uuid.NewString(), "-", ""),
		MaxPartBytes: MaxPartBytes,
		ExpireTime:   timestamppb.New(g.opts.clock().Add(namespaces.UploadHorizon)),
	}, nil
}

// uploadPart stores one part on the blob stream; the part of a PII field
// is sealed first. A part sent twice within the duplicate window is stored
// once; a later copy is harmless (the first of each index counts).
func (g *Gateway) uploadPart(ctx context.Context, r *request, req *prismv1.UploadPartRequest) (proto.Message, error) {
	if req.GetIndex() >= g.maxParts() {
		return nil, status.Invalidf("part index %d is past the last part a value of at most %d bytes has (%d)", req.GetIndex(), g.opts.maxChunkedBytes, g.maxParts()-1)
	}
	if err := g.checkLargeValue(r, 1); err != nil {
		return nil, err
	}
	data := req.GetData()
	if _, ok := r.ns.PII.Kind(string(req.GetKey())); ok {
		rk, err := g.sealKey(ctx, r, req.GetId())
		if err != nil {
			return nil, err
		}
		data = rk.Seal(partField(req.GetKey(), req.GetUploadId(), req.GetIndex()), data)
	}
	ack, err := g.publishPart(ctx, r.ns.Name, req.GetUploadId(), blobItem(req.GetId(), req.GetKey()), req.GetIndex(), data)
	if err != nil {
		return nil, err
	}
	return &prismv1.UploadPartResponse{Seq: ack.Sequence}, nil
}

func (g *Gateway) publishPart(ctx context.Context, ns, upload, item string, index uint32, data []byte) (*jetstream.PubAck, error) {
	msg := nats.NewMsg(subjects.Blob(ns, upload))
	msg.Data = data
	idx := strconv.FormatUint(uint64(index), 10)
	msg.Header.Set(subjects.HeaderPart, idx)
	msg.Header.Set(headerBlobItem, item)
	msg.Header.Set(subjects.HeaderMsgID, upload+"."+idx)
	ack, err := g.publish(ctx, msg)
	if err != nil {
		return nil, status.FromJetStream(err, ns, "storing a part of a large value")
	}
	return ack, nil
}

// part is one stored part of an upload.
type part struct {
	seq  uint64
	data []byte
}

// readUpload returns the parts of upload in index order: the first stored
// copy of each index, which must run from 0 without a gap and belong to
// item. Errors: INVALID_ARGUMENT for a missing, foreign or excess part;
// UNAVAILABLE for JetStream.
func (g *Gateway) readUpload(ctx context.Context, ns, upload, item string) ([]part, error) {
	s, err := g.js.Stream(ctx, subjects.BlobStream(ns))
	if err != nil {
		return nil, status.FromJetStream(err, ns, "looking up the blob stream")
	}
	subj := subjects.Blob(ns, upload)
	byIndex := map[uint32]part{}
	last := uint32(0)
	for seq, n := uint64(1), 0; ; n++ {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, status.FromJetStream(err, ns, "reading the parts of a large value")
		}
		seq = m.Sequence + 1
		if n > 2*int(g.maxParts()) {
			return nil, status.Invalidf("upload %s has more parts than a value of at most %d bytes can: start a new upload", upload, g.opts.maxChunkedBytes)
		}
		if m.Header.Get(headerBlobItem) != item {
			return nil, status.Invalidf("upload %s was made for another record or item key; upload the value for this one", upload)
		}
		i, err := strconv.ParseUint(m.Header.Get(subjects.HeaderPart), 10, 32)
		if err != nil {
			return nil, status.Newf(prismv1.Code_INTERNAL, "upload %s has a part without a valid index", upload)
		}
		if time.Since(m.Time) > namespaces.UploadHorizon { // server time, not the gateway clock
			return nil, status.Invalidf("upload %s was started more than %v ago; its parts are being collected: upload the value again", upload, namespaces.UploadHorizon)
		}
		if _, dup := byIndex[uint32(i)]; !dup {
			byIndex[uint32(i)] = part{seq: m.Sequence, data: m.Data}
			last = max(last, uint32(i))
		}
	}
	if len(byIndex) == 0 {
		return nil, status.Invalidf("upload %s has no parts (never sent, or collected after %v): upload the value again", upload, namespaces.UploadHorizon)
	}
	parts := make([]part, 0, len(byIndex))
	for i := uint32(0); i <= last; i++ {
		p, ok := byIndex[i]
		if !ok {
			return nil, status.Invalidf("upload %s is missing part %d of %d: send it, then put again", upload, i, last+1)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// commitUpload checks the upload c of item key of record id and returns
// the reference its put event carries. A PII field's parts are opened,
// checked, and the whole value sealed again as one value into a new blob,
// so the projection stores the same sealed form as for a small value.
func (g *Gateway) commitUpload(ctx context.Context, r *request, id, key []byte, c *prismv1.ChunkedValue, rk **pii.RecordKey) (*prismv1.ChunkedValue, error) {
	ns := r.ns.Name
	if err := g.checkLargeValue(r, c.GetSize()); err != nil {
		return nil, err
	}
	item := blobItem(id, key)
	parts, err := g.readUpload(ctx, ns, c.GetUploadId(), item)
	if err != nil {
		return nil, err
	}
	_, sealed := r.ns.PII.Kind(string(key))
	if sealed && *rk == nil {
		if *rk, err = g.sealKey(ctx, r, id); err != nil {
			return nil, err
		}
	}
	h := sha256.New()
	var size uint64
	var whole []byte
	for i, p := range parts {
		data := p.data
		if sealed {
			if data, err = (*rk).Open(partField(key, c.GetUploadId(), uint32(i)), p.data); err != nil {
				return nil, status.Invalidf("part %d of upload %s does not open under this record's key: upload the value for this record again", i, c.GetUploadId())
			}
			whole = append(whole, data...)
		}
		h.Write(data)
		size += uint64(len(data))
	}
	if size != c.GetSize() {
		return nil, status.Invalidf("upload %s holds %d bytes in %d parts, not the %d declared: send the missing parts", c.GetUploadId(), size, len(parts), c.GetSize())
	}
	if sum := h.Sum(nil); !bytes.Equal(sum, c.GetSha256()) {
		return nil, status.Invalidf("the parts of upload %s do not have the declared sha256: upload the value again", c.GetUploadId())
	}
	ref := &prismv1.ChunkedValue{UploadId: c.GetUploadId(), Size: c.GetSize(), Sha256: c.GetSha256(), Parts: uint32(len(parts)), FirstSeq: parts[0].seq}
	for _, p := range parts {
		ref.FirstSeq = min(ref.FirstSeq, p.seq)
	}
	if !sealed {
		return ref, nil
	}
	return g.storeSealed(ctx, ns, item, ref, (*rk).Seal(string(key), whole))
}

// storeSealed stores sealed (the whole value of a PII field, sealed as
// one) as a new blob and returns ref pointing at it.
func (g *Gateway) storeSealed(ctx context.Context, ns, item string, ref *prismv1.ChunkedValue, sealed []byte) (*prismv1.ChunkedValue, error) {
	// Named after the upload, so that a retried put stores the same parts
	// (deduplicated), and short enough for any upload id.
	h := sha256.Sum256([]byte(ref.GetUploadId()))
	blob := "s" + hex.EncodeToString(h[:20])
	out := &prismv1.ChunkedValue{UploadId: blob, Size: ref.GetSize(), Sha256: ref.GetSha256()}
	for i := 0; len(sealed) > 0; i++ {
		n := min(len(sealed), MaxPartBytes)
		ack, err := g.publishPart(ctx, ns, blob, item, uint32(i), sealed[:n])
		if err != nil {
			return nil, err
		}
		if i == 0 {
			out.FirstSeq = ack.Sequence
		}
		out.Parts++
		sealed = sealed[n:]
	}
	return out, nil
}
