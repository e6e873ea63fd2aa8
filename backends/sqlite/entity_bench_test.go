package sqlite_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/prism-data/prism/backends/backendtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// BenchmarkApplyEntity measures Store.ApplyEntity on batches of benchBatch
// puts of 100-byte records with one secondary index each; compare with
// BenchmarkApplyKeyValue (one item of the same size a put):
//
//	go test -run '^$' -bench 'Apply(Entity|KeyValue)' -benchtime 400x -count 3 ./backends/sqlite/
func BenchmarkApplyEntity(b *testing.B) {
	for _, order := range idOrders {
		b.Run(order.name, func(b *testing.B) {
			ctx := context.Background()
			s, _ := openStore(b)
			record := make([]byte, benchValue)
			changes := make([]*prismv1.EntityChange, benchBatch)
			for i := range changes {
				changes[i] = &prismv1.EntityChange{Event: &prismv1.EntityEvent{Id: make([]byte, 16), Record: record,
					Indexes: []*prismv1.IndexEntry{{Index: "created_at", Key: make([]byte, 8)}}}}
			}
			var seq uint64
			start := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				for _, c := range changes {
					seq++
					c.Seq = seq
					benchID(c.Event.Id, seq, order.random)
					binary.BigEndian.PutUint64(c.Event.Indexes[0].Key, seq)
				}
				if err := s.ApplyEntity(ctx, changes, seq); err != nil {
					b.Fatal(err)
				}
			}
			reportRows(b, start)
		})
	}
}

// BenchmarkEntityReads measures a get by primary key and a page of 100 of
// a secondary-index range query on records records, ascending and
// descending:
//
//	go test -run '^$' -bench EntityReads -benchtime 2000x ./backends/sqlite/
func BenchmarkEntityReads(b *testing.B) {
	const records = 100_000
	ctx := context.Background()
	s, _ := openStore(b)
	record := make([]byte, benchValue)
	var seq uint64
	for seq < records {
		changes := make([]*prismv1.EntityChange, 0, 1024)
		for range 1024 {
			seq++
			id := make([]byte, 16)
			benchID(id, seq, true)
			changes = append(changes, &prismv1.EntityChange{Seq: seq, Event: &prismv1.EntityEvent{Id: id, Record: record,
				Indexes: []*prismv1.IndexEntry{{Index: "created_at", Key: binary.BigEndian.AppendUint64(nil, seq%5000)}}}})
		}
		if err := s.ApplyEntity(ctx, changes, seq); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("get", func(b *testing.B) {
		id := make([]byte, 16)
		for i := range b.N {
			benchID(id, uint64(i%records)+1, true)
			rec, err := s.GetEntity(ctx, id)
			if err != nil || rec == nil {
				b.Fatalf("GetEntity: %v, %v", rec, err)
			}
		}
	})
	for _, desc := range []bool{false, true} {
		b.Run(fmt.Sprintf("query/descending=%v", desc), func(b *testing.B) {
			for i := range b.N {
				from := uint64(i % 4000)
				resp, err := s.ScanEntities(ctx, &prismv1.EntityScanRequest{Index: "created_at", Descending: desc, PageSize: 100,
					From: binary.BigEndian.AppendUint64(nil, from), To: binary.BigEndian.AppendUint64(nil, from+1000)})
				if err != nil || len(resp.GetRecords()) != 100 {
					b.Fatalf("ScanEntities: %d records, %v", len(resp.GetRecords()), err)
				}
			}
		})
	}
}

// BenchmarkEntityRangeQuery1M measures a page of 100 of a secondary-index
// range on 1M records (backendtest.BenchEntityRangeQuery; the fill takes
// a while):
//
//	go test -run '^$' -bench EntityRangeQuery1M -benchtime 3000x -timeout 30m ./backends/sqlite/
func BenchmarkEntityRangeQuery1M(b *testing.B) {
	s, _ := openStore(b)
	backendtest.BenchEntityRangeQuery(b, s, backendtest.EntityBenchRecords(b))
}
