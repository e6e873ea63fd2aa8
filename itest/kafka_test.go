package itest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prism-data/prism/backends/kafka/kafkatest"
	"github.com/prism-data/prism/client"
)

// startKafkaPrism runs prism with one read-your-writes log namespace,
// clicks, on a kfake cluster this test process runs; prism reaches it over
// loopback with --kafka-brokers.
func startKafkaPrism(t *testing.T) *prismProc {
	t.Helper()
	_, brokers := kafkatest.Start(t)
	yaml := "name: clicks\nabstraction: log\nbackend: kafka\nconsistency: read-your-writes\nkafka:\n  partitions: 3\n"
	cfg := configDir(t, yaml)
	return startPrism(t, t.TempDir(), 0, "--config", cfg, "--kafka-brokers", strings.Join(brokers, ","))
}

// readLog reads every partition of the log to its end, waiting first until
// the projection applied seq, and returns the records by ce-id (checking
// that copies of one id are the same record) and the seqs of each key in
// log order, duplicates dropped.
func readLog(t *testing.T, l *client.Log, seq uint64) (map[string]client.LogRecord, map[string][]uint64) {
	t.Helper()
	ctx := testCtx(t)
	byID := map[string]client.LogRecord{}
	perKey := map[string][]uint64{}
	first, err := l.Fetch(ctx, 0, 0, client.AfterWrite(seq), client.MaxRecords(1))
	if err != nil {
		t.Fatal(err)
	}
	for p := range first.Partitions {
		for offset := int64(0); ; {
			page, err := l.Fetch(ctx, p, offset, client.MaxRecords(1000))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Records {
				if prev, ok := byID[r.ID]; ok {
					if prev.Seq != r.Seq || string(prev.Value) != string(r.Value) {
						t.Fatalf("record %s at %d/%d differs from its first copy", r.ID, r.Partition, r.Offset)
					}
					continue
				}
				byID[r.ID] = r
				perKey[string(r.Key)] = append(perKey[string(r.Key)], r.Seq)
			}
			offset = page.NextOffset
			if offset >= page.HighWatermark {
				break
			}
		}
	}
	for key, seqs := range perKey {
		if !slices.IsSorted(seqs) {
			t.Fatalf("key %s: seqs %v out of append order", key, seqs)
		}
	}
	return byID, perKey
}

func TestKafkaLogNamespaceEndToEnd(t *testing.T) {
	p := startKafkaPrism(t)
	_, c := p.connect(t)
	l := c.Log("clicks", client.ReadYourWrites())
	ctx := testCtx(t)
	want := map[uint64]string{} // seq -> key/value
	for i := range 30 {
		key, value := fmt.Sprintf("user-%d", i%4), fmt.Sprintf("click %d", i)
		seq, err := l.Append(ctx, []byte(key), []byte(value), map[string]string{"page": fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		want[seq] = key + "/" + value
	}
	page, err := l.FetchKey(ctx, []byte("user-1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, r := range page.Records {
		if string(r.Key) == "user-1" {
			values = append(values, string(r.Value)+"@"+r.Headers["page"])
		}
	}
	if strings.Join(values, ",") != "click 1@1,click 5@5,click 9@9,click 13@13,click 17@17,click 21@21,click 25@25,click 29@29" {
		t.Fatalf("records of user-1: %v", values)
	}

	// A clean restart resumes the projection where it stopped.
	p.stop()
	p.restart()
	_, c = p.connect(t)
	l = c.Log("clicks", client.ReadYourWrites())
	var last uint64
	for i := 30; i < 40; i++ {
		key, value := fmt.Sprintf("user-%d", i%4), fmt.Sprintf("click %d", i)
		if last, err = l.Append(ctx, []byte(key), []byte(value), nil); err != nil {
			t.Fatal(err)
		}
		want[last] = key + "/" + value
	}
	byID, _ := readLog(t, l, last)
	if len(byID) != len(want) {
		t.Fatalf("the log holds %d appends, want %d", len(byID), len(want))
	}
	for _, r := range byID {
		if want[r.Seq] != string(r.Key)+"/"+string(r.Value) {
			t.Fatalf("record of seq %d is %s/%s, want %s", r.Seq, r.Key, r.Value, want[r.Seq])
		}
	}
	if _, err := l.Fetch(ctx, 3, 0); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("fetch of partition 3 of 3: %v, want ErrInvalidArgument", err)
	}
}

// TestKafkaLogKill9KeepsAckedAppends kills prism while it appends and
// projects, restarts it, and checks that every acknowledged append is in
// the log, each key in order: duplicates are allowed (at-least-once, told
// apart by ce-id), gaps are not.
func TestKafkaLogKill9KeepsAckedAppends(t *testing.T) {
	p := startKafkaPrism(t)
	_, c := p.connect(t)
	l := c.Log("clicks")
	var (
		mu    sync.Mutex
		acked = map[uint64]string{}
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(testCtx(t))
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%d-k%d", w, i%3)
				seq, err := l.Append(ctx, []byte(key), []byte(fmt.Sprint(i)), nil)
				if err != nil {
					return // the process died under it
				}
				mu.Lock()
				acked[seq] = key
				n := len(acked)
				mu.Unlock()
				if n == 200 {
					p.kill()
				}
			}
		}()
	}
	<-p.done
	cancel()
	wg.Wait()
	p.restart()
	_, c = p.connect(t)
	l = c.Log("clicks")
	var last uint64
	for seq := range acked {
		last = max(last, seq)
	}
	byID, _ := readLog(t, l, last)
	bySeq := map[uint64]client.LogRecord{}
	for _, r := range byID {
		bySeq[r.Seq] = r
	}
	for seq, key := range acked {
		if r, ok := bySeq[seq]; !ok || string(r.Key) != key {
			t.Fatalf("acknowledged append of seq %d (key %s) is not in the log: %+v", seq, key, r)
		}
	}
	if len(acked) < 200 {
		t.Fatalf("only %d appends acknowledged before the kill", len(acked))
	}
}

// isLogTourLine reports whether a README request is one of the Log
// section's, on namespace clicks.
func isLogTourLine(r readmeRequest) bool { return strings.HasPrefix(r.subject, "prism.clicks.") }

// TestReadmeLogTour runs the README's `nats req` commands of the Log
// section in order against a `prism serve` with the log namespace clicks
// on a kfake cluster, and checks each outcome.
func TestReadmeLogTour(t *testing.T) {
	reqs := readmeRequestsOf(t, "clicks", 5)
	p := startKafkaPrism(t)
	nc, _ := p.connect(t)
	for _, r := range reqs {
		r.send(t, nc)
	}
}
