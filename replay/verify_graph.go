package replay

import (
	"bytes"
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// GraphSource is a Graph projection target as Verify reads it;
// sqlite.Store, postgres.Store and neptune.Store implement it. Checkpoint
// is as for Source. ExportGraph returns, when edgeFrom is not nil, up to
// limit edges with (from, label, to) >= edgeFrom's, in that order
// (byte order of each part), then, to fill the limit, vertices with id >=
// vertexFrom in byte order of id; fewer than limit only when no more
// exist. Each element is as it was at one state of the target between
// the call's start and its end. Edge ends that are not vertices (a
// Neptune stub node) are not vertices.
type GraphSource interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ExportGraph(ctx context.Context, edgeFrom *prismv1.Edge, vertexFrom string, limit int) ([]*prismv1.Edge, []*prismv1.Vertex, error)
}

// GraphVerifySource is the Source Verify compares a graph target with:
// each edge is the record "e" NUL from NUL label NUL to, each vertex the
// record "v" NUL id (so every edge comes before every vertex), with the
// element's revision and one item "g", the element's deterministic
// protobuf encoding without its revision (label and properties
// included). A target whose vertex or edge rows differ from the other's
// is reported as differing, one that lacks one as missing. Graph names
// never hold NUL (subjects.ValidateGraphName), so the record ids sort as
// the elements do.
func GraphVerifySource(src GraphSource) Source { return graphSource{src} }

type graphSource struct{ src GraphSource }

func (g graphSource) Checkpoint(ctx context.Context) (uint64, error) { return g.src.Checkpoint(ctx) }

var (
	edgePrefix   = []byte("e\x00")
	vertexPrefix = []byte("v\x00")
)

func (g graphSource) ExportRecords(ctx context.Context, from []byte, limit int, _ time.Time) ([]*prismv1.GetResponse, error) {
	edgeFrom, vertexFrom, ok := graphBounds(from)
	if !ok || limit <= 0 {
		return nil, nil
	}
	edges, vertices, err := g.src.ExportGraph(ctx, edgeFrom, vertexFrom, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*prismv1.GetResponse, 0, len(edges)+len(vertices))
	for _, e := range edges {
		r, err := graphRecord(append(append(append(append(append(append([]byte{}, edgePrefix...), e.GetFrom()...), 0), e.GetLabel()...), 0), e.GetTo()...),
			&prismv1.Edge{From: e.GetFrom(), Label: e.GetLabel(), To: e.GetTo(), Properties: e.GetProperties()}, e.GetRevision())
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	for _, v := range vertices {
		r, err := graphRecord(append(append([]byte{}, vertexPrefix...), v.GetId()...),
			&prismv1.Vertex{Id: v.GetId(), Label: v.GetLabel(), Properties: v.GetProperties()}, v.GetRevision())
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func graphRecord(id []byte, m proto.Message, rev uint64) (*prismv1.GetResponse, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &prismv1.GetResponse{Id: id, Revision: rev, Items: []*prismv1.Item{{Key: []byte("g"), Value: b}}}, nil
}

// graphBounds is where the records >= from start: the edge bound (nil
// when from is past every edge) and the vertex one; ok is false when
// from is past every vertex too.
func graphBounds(from []byte) (edgeFrom *prismv1.Edge, vertexFrom string, ok bool) {
	switch {
	case bytes.Compare(from, edgePrefix) < 0:
		return &prismv1.Edge{}, "", true
	case bytes.HasPrefix(from, edgePrefix):
		parts := strings.SplitN(string(from[len(edgePrefix):]), "\x00", 3)
		parts = append(parts, "", "")
		return &prismv1.Edge{From: parts[0], Label: parts[1], To: nulFree(parts[2])}, "", true
	case bytes.Compare(from, vertexPrefix) < 0:
		return nil, "", true
	case bytes.HasPrefix(from, vertexPrefix):
		return nil, nulFree(string(from[len(vertexPrefix):])), true
	}
	return nil, "", false
}

// nulFree is the smallest string without NUL that is >= s: s itself, or,
// when s holds a NUL, what is before it followed by 0x01 (the names are
// NUL-free, so none lies between).
func nulFree(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i] + "\x01"
	}
	return s
}
