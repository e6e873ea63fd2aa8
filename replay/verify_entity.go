package replay

import (
	"bytes"
	"context"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// EntitySource is an Entity projection target as Verify reads it;
// sqlite.Store and postgres.Store implement it. Checkpoint is as for
// Source; ExportEntities returns up to limit records with id >= from
// (nil: the start), in byte order of id, each with its revision, lineage
// and index entries (in index name order), read in one consistent state.
type EntitySource interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ExportEntities(ctx context.Context, from []byte, limit int) ([]*prismv1.EntityRecord, error)
}

// EntityVerifySource is the Source Verify compares an entity target
// with: each record becomes one with its revision and the items "l" (its
// lineage), "r" (its bytes) and, for each index entry, "i" NUL index name
// (its key), so that a target whose record, lineage or index rows differ
// from the other's is reported as differing. All of them are functions
// of the stream: the gateway computes the index keys, the projector
// stores the event's envelope as the lineage.
func EntityVerifySource(src EntitySource) Source { return entitySource{src} }

type entitySource struct{ src EntitySource }

func (e entitySource) Checkpoint(ctx context.Context) (uint64, error) { return e.src.Checkpoint(ctx) }

func (e entitySource) ExportRecords(ctx context.Context, from []byte, limit int, _ time.Time) ([]*prismv1.GetResponse, error) {
	recs, err := e.src.ExportEntities(ctx, from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*prismv1.GetResponse, len(recs))
	for i, r := range recs {
		items := make([]*prismv1.Item, 0, len(r.GetIndexes())+2)
		for _, ix := range r.GetIndexes() {
			items = append(items, &prismv1.Item{Key: append([]byte("i\x00"), ix.GetIndex()...), Value: ix.GetKey()})
		}
		// Backends order index names by their collation: sorted here by
		// bytes, as the digest needs.
		slices.SortFunc(items, func(a, b *prismv1.Item) int { return bytes.Compare(a.GetKey(), b.GetKey()) })
		var lineage []byte
		if l := r.GetLineage(); l != nil {
			if lineage, err = (proto.MarshalOptions{Deterministic: true}).Marshal(l); err != nil {
				return nil, err
			}
		}
		items = append(items, &prismv1.Item{Key: []byte("l"), Value: lineage}, &prismv1.Item{Key: []byte("r"), Value: r.GetRecord()})
		out[i] = &prismv1.GetResponse{Id: r.GetId(), Revision: r.GetRevision(), Items: items}
	}
	return out, nil
}
