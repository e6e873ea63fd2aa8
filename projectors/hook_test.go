package projectors_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The applied hook reports, for every committed batch, the records it
// changed and the sequence through which, before Applied moves there.
func TestAppliedHook(t *testing.T) {
	js := startJetStream(t)
	st := openStore(t)
	pub := newPublisher(js)

	type call struct {
		ids     []string
		through uint64
	}
	var (
		mu    sync.Mutex
		calls []call
		p     *projectors.Projector
		early []string
	)
	ready := make(chan struct{})
	hook := func(ids [][]byte, through uint64) {
		<-ready
		c := call{through: through}
		for _, id := range ids {
			c.ids = append(c.ids, string(id))
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
		if p.Applied() >= through {
			early = append(early, fmt.Sprintf("through %d reported after Applied() = %d", through, p.Applied()))
		}
	}
	var want []string
	var last uint64
	for i := range 300 {
		id := fmt.Sprintf("rec-%d", i%7)
		want = append(want, id)
		last = pub.publish(t, &prismv1.KeyValueEvent{Id: []byte(id), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}}}})
	}
	p = startProjector(t, js, "sqlite", st, projectors.WithAppliedHook(hook), projectors.WithBatchSize(64))
	close(ready)
	waitApplied(t, p, last)

	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Fatalf("the hook ran after the checkpoint moved: %v", early)
	}
	var got []string
	var prev uint64
	for _, c := range calls {
		if c.through <= prev || len(c.ids) > 4*64 { // up to 4 batches when catching up
			t.Fatalf("call %+v after through %d", c, prev)
		}
		prev = c.through
		got = append(got, c.ids...)
	}
	if prev != last || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hook saw %d ids through %d, want %d through %d (in order)", len(got), prev, len(want), last)
	}
}
