package replay

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func TestDigest(t *testing.T) {
	rec := func(rev uint64, items ...*prismv1.Item) *prismv1.GetResponse {
		return &prismv1.GetResponse{Id: []byte("id"), Revision: rev, Items: items}
	}
	it := func(k, v string) *prismv1.Item { return &prismv1.Item{Key: []byte(k), Value: []byte(v)} }
	exp := func(k, v string, sec int64) *prismv1.Item {
		i := it(k, v)
		i.ExpireTime = &timestamppb.Timestamp{Seconds: sec}
		return i
	}
	d := newDigester()
	base := d.digest(rec(1, it("a", "1"), it("b", "2")))
	for name, r := range map[string]*prismv1.GetResponse{
		"value":        rec(1, it("a", "1"), it("b", "3")),
		"key":          rec(1, it("a", "1"), it("c", "2")),
		"item missing": rec(1, it("a", "1")),
		"item added":   rec(1, it("a", "1"), it("b", "2"), it("c", "")),
		"shifted":      rec(1, it("a", "1b"), it("", "2")),
		"expire time":  rec(1, it("a", "1"), exp("b", "2", 5)),
	} {
		if d.digest(r).sum == base.sum {
			t.Errorf("%s: same digest as the original", name)
		}
	}
	if again := d.digest(rec(9, it("a", "1"), it("b", "2"))); again.sum != base.sum || again.rev != 9 {
		t.Errorf("same items: digest differs or revision lost")
	}
	e := d.digest(rec(1, exp("a", "1", 20), exp("b", "2", 10), it("c", "3")))
	if !e.soonest.Equal(time.Unix(10, 0)) {
		t.Errorf("soonest = %v, want %v", e.soonest, time.Unix(10, 0))
	}
}

// TestClassify checks the proof rules: a difference is reported only when
// no write applied to one target and not yet to the other can explain it.
func TestClassify(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rd := func(lo, hi uint64) *read { return &read{lo: lo, hi: hi, at: t0} }
	ent := func(rev uint64, content byte) *entry {
		return &entry{id: []byte("x"), rev: rev, sum: [32]byte{content}}
	}
	soon := func(e *entry, d time.Duration) *entry { e.soonest = t0.Add(d); return e }
	tests := []struct {
		name string
		o, n obs
		want verdict
	}{
		{"both absent", obs{nil, rd(5, 5)}, obs{nil, rd(5, 5)}, same},
		{"equal", obs{ent(3, 1), rd(5, 9)}, obs{ent(3, 1), rd(2, 9)}, same},
		{"equal above the fence", obs{ent(8, 1), rd(5, 9)}, obs{ent(8, 1), rd(5, 9)}, same},

		{"same revision, other content", obs{ent(3, 1), rd(5, 9)}, obs{ent(3, 2), rd(5, 9)}, differing},
		{"same revision above lo, other content", obs{ent(7, 1), rd(5, 9)}, obs{ent(7, 2), rd(5, 9)}, differing},
		{"revisions differ, both below both lo", obs{ent(3, 1), rd(5, 9)}, obs{ent(4, 1), rd(5, 9)}, differing},
		{"new behind on this record", obs{ent(7, 1), rd(6, 9)}, obs{ent(3, 1), rd(6, 9)}, undecided},
		{"old behind on this record", obs{ent(3, 1), rd(6, 9)}, obs{ent(7, 2), rd(6, 9)}, undecided},
		{"higher revision exactly at lo", obs{ent(6, 1), rd(6, 9)}, obs{ent(3, 1), rd(6, 9)}, differing},

		{"missing, quiet", obs{ent(3, 1), rd(5, 5)}, obs{nil, rd(5, 5)}, missing},
		{"missing, new read ahead of old", obs{ent(3, 1), rd(5, 6)}, obs{nil, rd(5, 8)}, undecided},
		{"missing, new read first", obs{ent(3, 1), rd(8, 9)}, obs{nil, rd(5, 8)}, missing},
		{"missing, written after new's lo", obs{ent(6, 1), rd(8, 9)}, obs{nil, rd(5, 8)}, undecided},
		{"extra, quiet", obs{nil, rd(5, 5)}, obs{ent(3, 1), rd(5, 5)}, extra},
		{"extra, old read ahead of new", obs{nil, rd(5, 8)}, obs{ent(3, 1), rd(5, 6)}, undecided},
		{"extra, old read first", obs{nil, rd(5, 8)}, obs{ent(3, 1), rd(8, 9)}, extra},

		{"revision above own checkpoint", obs{ent(3, 1), rd(5, 9)}, obs{ent(30, 1), rd(5, 9)}, differing},
		{"revision above own checkpoint, other absent", obs{nil, rd(5, 9)}, obs{ent(30, 1), rd(5, 9)}, extra},

		{"item expiring before the read ended", obs{soon(ent(3, 1), -time.Millisecond), rd(5, 5)}, obs{ent(3, 2), rd(5, 5)}, undecided},
		{"item expiring within the skew", obs{ent(3, 1), rd(5, 5)}, obs{soon(ent(3, 2), 500*time.Millisecond), rd(5, 5)}, undecided},
		{"record expiring within the skew", obs{soon(ent(3, 1), 500*time.Millisecond), rd(5, 5)}, obs{nil, rd(5, 5)}, undecided},
		{"item expiring after the skew", obs{soon(ent(3, 1), 2*time.Second), rd(5, 5)}, obs{ent(3, 2), rd(5, 5)}, differing},
		{"equal records expiring soon", obs{soon(ent(3, 1), 0), rd(5, 5)}, obs{soon(ent(3, 1), 0), rd(5, 5)}, same},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.o, tt.n, time.Second); got != tt.want {
				t.Errorf("classify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	for _, id := range [][]byte{nil, {}, {0}, []byte("abc"), {0xff}} {
		n := next(id)
		if len(n) != len(id)+1 || n[len(id)] != 0 || string(n[:len(id)]) != string(id) {
			t.Errorf("next(%x) = %x", id, n)
		}
	}
}

// TestCombine checks how a recheck round decides from its reads old, new,
// old: a proven difference wins over a match in the other pair.
func TestCombine(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rd := func(lo, hi uint64) *read { return &read{lo: lo, hi: hi, at: t0} }
	ent := func(rev uint64, content byte) *entry {
		return &entry{id: []byte("x"), rev: rev, sum: [32]byte{content}}
	}
	v := &verifier{opts: defaultVerifyOptions()}
	tests := []struct {
		name      string
		o1, n, o2 obs
		want      verdict
	}{
		{"all equal", obs{ent(3, 1), rd(10, 11)}, obs{ent(3, 1), rd(11, 12)}, obs{ent(3, 1), rd(12, 13)}, same},
		// New matched old's first read, but old then applied event 11,
		// which new had applied too by its read (lo 11) yet does not show.
		{"new missed a later event", obs{ent(3, 1), rd(10, 11)}, obs{ent(3, 1), rd(11, 12)}, obs{ent(11, 2), rd(12, 13)}, differing},
		// Old moved on after new's read: not evidence.
		{"old moved on", obs{ent(3, 1), rd(10, 11)}, obs{ent(3, 1), rd(11, 12)}, obs{ent(12, 2), rd(12, 13)}, same},
		{"caught up by the second read", obs{ent(12, 2), rd(12, 13)}, obs{ent(3, 1), rd(11, 12)}, obs{ent(3, 1), rd(13, 13)}, same},
		{"absence then presence", obs{nil, rd(10, 11)}, obs{ent(3, 1), rd(11, 12)}, obs{ent(3, 1), rd(12, 13)}, extra},
		{"presence after absence", obs{ent(3, 1), rd(10, 11)}, obs{nil, rd(11, 12)}, obs{ent(3, 1), rd(12, 13)}, missing},
		{"still moving", obs{ent(12, 1), rd(12, 12)}, obs{ent(14, 2), rd(14, 15)}, obs{ent(16, 3), rd(15, 16)}, undecided},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := v.combine(tt.o1, tt.n, tt.o2); got != tt.want {
				t.Errorf("combine = %v, want %v", got, tt.want)
			}
		})
	}
}
