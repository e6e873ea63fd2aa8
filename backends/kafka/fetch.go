package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Fetch limits.
const (
	// DefaultMaxRecords is the page size of a Fetch that names none: the
	// default page size of every backend's reads.
	DefaultMaxRecords = kit.DefaultPageSize
	// MaxRecords is the largest page; larger max_records mean MaxRecords.
	MaxRecords = kit.MaxPageSize
	// fetchMaxBytes bounds one fetch response. Kafka returns at least one
	// record batch even if it is larger.
	fetchMaxBytes = 8 << 20
	// fetchMaxWait is how long the broker may wait for MinBytes when the
	// requested offset is the partition's end.
	fetchMaxWait = 10 * time.Millisecond
)

// Fetch returns the records of one partition from req.Offset on, in offset
// order: at most max_records (0 means DefaultMaxRecords, above MaxRecords
// means MaxRecords), only offsets below end_offset when it is set, and only
// what one fetch from the cluster returns, so a page may hold fewer records
// than asked even when more follow: NextOffset says where to go on, and a
// page is the last of the partition when NextOffset reaches HighWatermark.
// With req.Key set, the partition is the one that holds the key's records.
// Reading at the partition's end returns no records, not an error.
//
// Errors: ErrInvalidRequest (nil request, partition out of range, key and
// partition both set, negative offset, end_offset not above offset),
// ErrOffsetOutOfRange (offset past the end or before the first kept
// record), ErrClosed, or the cluster's error.
func (s *Store) Fetch(ctx context.Context, req *prismv1.LogFetchRequest) (*prismv1.LogFetchResponse, error) {
	unlock, err := s.read()
	if err != nil {
		return nil, err
	}
	defer unlock()
	partition, err := s.fetchPartition(req)
	if err != nil {
		return nil, err
	}
	max := kit.PageSize(req.GetMaxRecords())
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	offset, end := req.GetOffset(), req.GetEndOffset()
	resp := &prismv1.LogFetchResponse{Partition: int32(partition), NextOffset: offset, Partitions: int32(s.partitions)}
	hw, err := s.fetchRecords(ctx, s.topic, partition, offset, func(r kafka.Record) (bool, error) {
		if r.Offset < offset {
			return true, nil // Kafka returns whole batches
		}
		if end > 0 && r.Offset >= end || len(resp.Records) >= max {
			return false, nil
		}
		key, value, err := readBytes(r)
		if err != nil {
			return false, err
		}
		rec := Record(kafka.Message{Partition: partition, Offset: r.Offset, Key: key, Value: value, Headers: r.Headers, Time: r.Time})
		resp.Records = append(resp.Records, rec)
		resp.NextOffset = r.Offset + 1
		return true, nil
	})
	if errors.Is(err, kafka.OffsetOutOfRange) {
		first, last, oerr := s.offsets(ctx, s.topic, partition)
		if oerr != nil {
			return nil, fmt.Errorf("fetch %s/%d at %d: %w", s.topic, partition, offset, err)
		}
		if offset == last {
			resp.HighWatermark = last
			return resp, nil
		}
		return nil, fmt.Errorf("%w: partition %d holds offsets %d to %d, not %d", ErrOffsetOutOfRange, partition, first, last-1, offset)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%d at %d: %w", s.topic, partition, offset, err)
	}
	resp.HighWatermark = hw
	return resp, nil
}

// fetchPartition validates req and returns the partition it reads.
func (s *Store) fetchPartition(req *prismv1.LogFetchRequest) (int, error) {
	switch {
	case req == nil:
		return 0, fmt.Errorf("%w: nil request", ErrInvalidRequest)
	case req.GetOffset() < 0:
		return 0, fmt.Errorf("%w: offset %d is negative", ErrInvalidRequest, req.GetOffset())
	case req.GetEndOffset() != 0 && req.GetEndOffset() <= req.GetOffset():
		return 0, fmt.Errorf("%w: end_offset %d is not above offset %d", ErrInvalidRequest, req.GetEndOffset(), req.GetOffset())
	case len(req.GetKey()) > 0 && req.GetPartition() != 0:
		return 0, fmt.Errorf("%w: key and partition %d both set; set one", ErrInvalidRequest, req.GetPartition())
	case len(req.GetKey()) > 0:
		return s.PartitionOf(req.GetKey()), nil
	case req.GetPartition() < 0 || int(req.GetPartition()) >= s.partitions:
		return 0, fmt.Errorf("%w: partition %d; the topic has partitions 0 to %d", ErrInvalidRequest, req.GetPartition(), s.partitions-1)
	}
	return int(req.GetPartition()), nil
}
