package kafka_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
)

// readGroup reads n messages as a member of group, committing each, and
// returns the seqs of each key in the order they arrived.
func readGroup(t *testing.T, s *kafka.Store, group string, n int) map[string][]uint64 {
	t.Helper()
	cfg, err := s.ReaderConfig(group)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxWait = 20 * time.Millisecond
	r := kafkago.NewReader(cfg)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string][]uint64{}
	for range n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d: %v", len(out), err)
		}
		rec := kafka.Record(m)
		if rec.GetId() == "" || rec.GetHeaders()["n"] == "" || rec.GetTime() == nil {
			t.Fatalf("record %v lacks its id, header or time", rec)
		}
		out[string(rec.GetKey())] = append(out[string(rec.GetKey())], rec.GetSeq())
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("CommitMessages: %v", err)
		}
	}
	return out
}

// A consumer group reads every record once, each key in order, and a
// member that joins after another left resumes after the last commit.
func TestConsumerGroupResumesAfterCommit(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	s := open(t, brokers, "groups", kafka.WithPartitions(3))
	ctx := context.Background()
	if err := s.ApplyLog(ctx, changes(1, 120, 6), 120); err != nil {
		t.Fatal(err)
	}
	first := readGroup(t, s, "billing", 120)
	if err := s.ApplyLog(ctx, changes(121, 60, 6), 180); err != nil {
		t.Fatal(err)
	}
	second := readGroup(t, s, "billing", 60)
	var all []uint64
	for key, seqs := range first {
		if !slices.IsSorted(seqs) {
			t.Fatalf("key %s: first member read %v, not in order", key, seqs)
		}
		all = append(all, seqs...)
	}
	for key, seqs := range second {
		if !slices.IsSorted(seqs) || len(first[key]) > 0 && seqs[0] <= slices.Max(first[key]) {
			t.Fatalf("key %s: second member read %v after %v", key, seqs, first[key])
		}
		all = append(all, seqs...)
	}
	slices.Sort(all)
	for i, seq := range all {
		if seq != uint64(i+1) {
			t.Fatalf("the group read seqs %v…, want 1 to 180 once each", all[:min(len(all), i+3)])
		}
	}
	if len(all) != 180 {
		t.Fatalf("the group read %d records, want 180", len(all))
	}
	// Another group starts from the first record.
	other := readGroup(t, s, "audit", 180)
	n := 0
	for _, seqs := range other {
		n += len(seqs)
	}
	if n != 180 {
		t.Fatalf("group audit read %d records, want 180", n)
	}
}

func TestReaderConfigNeedsGroup(t *testing.T) {
	_, brokers := kafkatest.Start(t)
	s := open(t, brokers, "groups")
	if _, err := s.ReaderConfig(""); err == nil {
		t.Fatal("ReaderConfig(\"\"): no error")
	}
}

// Two members of one group share the partitions: together they read every
// record, each key's records in order. A member that read 10 records
// while the other read none waits for the other's first, so the late
// joiner cannot find the topic already drained.
func TestConsumerGroupMembersSharePartitions(t *testing.T) {
	_, brokers := kafkatest.Start(t, kfake.GroupMinSessionTimeout(100*time.Millisecond))
	s := open(t, brokers, "shared", kafka.WithPartitions(4))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.ApplyLog(ctx, changes(1, 400, 16), 400); err != nil {
		t.Fatal(err)
	}
	cfg, err := s.ReaderConfig("workers")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxWait = 20 * time.Millisecond
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.SessionTimeout = time.Second
	cfg.RebalanceTimeout = time.Second
	cfg.JoinGroupBackoff = 50 * time.Millisecond
	type got struct {
		member int
		key    string
		seq    uint64
	}
	var (
		mu   sync.Mutex
		recs []got
		seen = map[uint64]bool{}
	)
	readers := []*kafkago.Reader{kafkago.NewReader(cfg), kafkago.NewReader(cfg)}
	// firstRead[i] is closed when member i read its first record.
	firstRead := []chan struct{}{make(chan struct{}), make(chan struct{})}
	count := []int{0, 0}
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return
				}
				rec := kafka.Record(m)
				mu.Lock()
				if count[i]++; count[i] == 1 {
					close(firstRead[i])
				}
				if count[i] == 10 && count[1-i] == 0 {
					mu.Unlock()
					select {
					case <-firstRead[1-i]:
					case <-ctx.Done():
						return
					}
					mu.Lock()
				}
				recs = append(recs, got{i, string(rec.GetKey()), rec.GetSeq()})
				seen[rec.GetSeq()] = true
				done := len(seen) == 400
				mu.Unlock()
				if err := r.CommitMessages(ctx, m); err != nil {
					return
				}
				if done {
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 400 {
		t.Fatalf("the group read %d distinct records, want 400", len(seen))
	}
	// A rebalance may hand a partition over and redeliver what was not yet
	// committed; drop redeliveries, then each key's first copies are in
	// order.
	members := map[int]bool{}
	last := map[string]uint64{}
	first := map[uint64]bool{}
	for _, r := range recs {
		members[r.member] = true
		if first[r.seq] {
			continue
		}
		first[r.seq] = true
		if r.seq <= last[r.key] {
			t.Fatalf("key %s: seq %d after %d", r.key, r.seq, last[r.key])
		}
		last[r.key] = r.seq
	}
	if !members[0] || !members[1] {
		t.Fatalf("members that read: %v, want both", members)
	}
	t.Logf("%d deliveries for 400 records", len(recs))
}
