package itest

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/subjects"
)

// startConfigured runs prism with two namespaces: "ev" (eventual) and "st"
// (strong).
func startConfigured(t *testing.T) *prismProc {
	t.Helper()
	cfg := configDir(t,
		"name: ev\nabstraction: keyvalue\nbackend: sqlite\nconsistency: eventual\n",
		"name: st\nabstraction: keyvalue\nbackend: sqlite\nconsistency: strong\n")
	return startPrism(t, t.TempDir(), 0, "--config", cfg)
}

func item(k, v string) client.Item { return client.Item{Key: []byte(k), Value: []byte(v)} }

func TestKeyValueEndToEnd(t *testing.T) {
	p := startConfigured(t)
	nc, c := p.connect(t)
	ev := c.KeyValue("ev", client.ReadYourWrites())
	st := c.KeyValue("st")

	t.Run("put get delete", func(t *testing.T) {
		ctx := testCtx(t)
		seq, err := ev.Put(ctx, []byte("user-1"), []client.Item{item("name", "Ada"), item("email", "ada@example.com")})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ev.Get(ctx, []byte("user-1"))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Revision != seq || len(rec.Items) != 2 || string(rec.Items[0].Key) != "email" || string(rec.Items[1].Value) != "Ada" {
			t.Fatalf("get = %+v (revision want %d)", rec, seq)
		}
		if _, err := ev.Delete(ctx, []byte("user-1"), [][]byte{[]byte("email")}); err != nil {
			t.Fatal(err)
		}
		rec, err = ev.Get(ctx, []byte("user-1"))
		if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Key) != "name" {
			t.Fatalf("after item delete: %+v, %v", rec, err)
		}
		if _, err := ev.Delete(ctx, []byte("user-1"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ev.Get(ctx, []byte("user-1")); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("get after delete: err %v, want ErrNotFound", err)
		}
	})

	t.Run("pagination over thousands of items", func(t *testing.T) {
		ctx := testCtx(t)
		id := []byte("big")
		want := map[string]string{}
		for batch := 0; batch < 3; batch++ {
			var items []client.Item
			for i := 0; i < 1000; i++ {
				k := fmt.Sprintf("k%05d", batch*1000+i)
				want[k] = "v" + k
				items = append(items, item(k, "v"+k))
			}
			if _, err := ev.Put(ctx, id, items); err != nil {
				t.Fatal(err)
			}
		}
		for _, size := range []uint32{1000, 7} {
			var got []client.Item
			token := ""
			for pages := 0; ; pages++ {
				rec, err := ev.Get(ctx, id, client.PageSize(size), client.PageToken(token))
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rec.Items...)
				if token = rec.NextPageToken; token == "" {
					break
				}
				if pages > 3000 {
					t.Fatal("pagination does not end")
				}
			}
			if len(got) != len(want) {
				t.Fatalf("page size %d: %d items, want %d", size, len(got), len(want))
			}
			for i, it := range got {
				if want[string(it.Key)] != string(it.Value) || (i > 0 && bytes.Compare(got[i-1].Key, it.Key) >= 0) {
					t.Fatalf("page size %d: item %d = %s=%s out of order or wrong", size, i, it.Key, it.Value)
				}
			}
		}
		rec, err := ev.Get(ctx, id, client.KeyRange([]byte("k00010"), []byte("k00020")))
		if err != nil || len(rec.Items) != 10 || string(rec.Items[0].Key) != "k00010" || string(rec.Items[9].Key) != "k00019" {
			t.Fatalf("range: %d items, %v", len(rec.Items), err)
		}
		rec, err = ev.Get(ctx, id, client.Keys([]byte("k00500"), []byte("nope"), []byte("k00001")))
		if err != nil || len(rec.Items) != 2 || string(rec.Items[0].Key) != "k00001" {
			t.Fatalf("keys: %+v, %v", rec, err)
		}
	})

	t.Run("mutate and scan", func(t *testing.T) {
		ctx := testCtx(t)
		var want []string
		for b := 0; b < 5; b++ {
			var muts []client.Mutation
			for i := 0; i < 500; i++ {
				id := fmt.Sprintf("scan-%05d", b*500+i)
				want = append(want, id)
				muts = append(muts, client.Mutation{ID: []byte(id), Items: []client.Item{item("k", id)}})
			}
			seqs, err := st.Mutate(ctx, muts)
			if err != nil {
				t.Fatal(err)
			}
			if len(seqs) != 500 || seqs[499]-seqs[0] != 499 {
				t.Fatalf("mutate seqs: %d, first %d last %d", len(seqs), seqs[0], seqs[len(seqs)-1])
			}
		}
		var got []string
		token := ""
		for {
			ids, next, err := st.Scan(ctx, client.PageSize(333), client.PageToken(token))
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				got = append(got, string(id))
			}
			if token = next; token == "" {
				break
			}
		}
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("scan returned %d ids, want %d", len(got), len(want))
		}
	})

	t.Run("mutate is all or nothing", func(t *testing.T) {
		ctx := testCtx(t)
		stale := uint64(1)
		_, err := st.Mutate(ctx, []client.Mutation{
			{ID: []byte("atom-1"), Items: []client.Item{item("k", "v")}},
			{ID: []byte("atom-2"), Items: []client.Item{item("k", "v")}, IfRevision: &stale},
		})
		if !errors.Is(err, client.ErrConflict) {
			t.Fatalf("mutate with a stale revision: %v, want ErrConflict", err)
		}
		if _, err := st.Get(ctx, []byte("atom-1")); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("first mutation of a refused batch is visible: %v", err)
		}
	})

	t.Run("strong reads see the last acked write", func(t *testing.T) {
		ctx := testCtx(t)
		for i := 0; i < 50; i++ {
			v := fmt.Sprint(i)
			if _, err := st.Put(ctx, []byte("counter"), []client.Item{item("n", v)}); err != nil {
				t.Fatal(err)
			}
			rec, err := st.Get(ctx, []byte("counter"))
			if err != nil || string(rec.Items[0].Value) != v {
				t.Fatalf("strong read after write %d: %+v, %v", i, rec, err)
			}
		}
	})

	t.Run("conditional writes race", func(t *testing.T) {
		ctx := testCtx(t)
		rev, err := st.Put(ctx, []byte("cas"), []client.Item{item("n", "0")}, client.IfRevision(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Put(ctx, []byte("cas"), []client.Item{item("n", "x")}, client.IfRevision(0)); !errors.Is(err, client.ErrConflict) {
			t.Fatalf("create of an existing record: %v, want ErrConflict", err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for w := range errs {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				_, errs[w] = st.Put(ctx, []byte("cas"), []client.Item{item("n", fmt.Sprint(w))}, client.IfRevision(rev))
			}(w)
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, client.ErrConflict):
				t.Fatalf("racing writer: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d writers won the race, want exactly 1", wins)
		}
	})

	t.Run("idempotent retry", func(t *testing.T) {
		ctx := testCtx(t)
		s1, err := ev.Put(ctx, []byte("idem"), []client.Item{item("k", "v")}, client.IdempotencyToken("tok-1"))
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ev.Put(ctx, []byte("idem"), []client.Item{item("k", "v")}, client.IdempotencyToken("tok-1"))
		if err != nil || s2 != s1 {
			t.Fatalf("retry: seq %d, %v; want %d", s2, err, s1)
		}
		if _, err := ev.Put(ctx, []byte("idem"), []client.Item{item("k", "other")}, client.IdempotencyToken("tok-1")); !errors.Is(err, client.ErrIdempotencyMismatch) {
			t.Fatalf("token reuse with another body: %v", err)
		}
		m1, err := ev.Mutate(ctx, []client.Mutation{{ID: []byte("idem-m"), Items: []client.Item{item("k", "v")}}}, client.IdempotencyToken("tok-m"))
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ev.Mutate(ctx, []client.Mutation{{ID: []byte("idem-m"), Items: []client.Item{item("k", "v")}}}, client.IdempotencyToken("tok-m"))
		if err != nil || fmt.Sprint(m1) != fmt.Sprint(m2) {
			t.Fatalf("mutate retry: %v, %v; want %v", m2, err, m1)
		}
	})

	t.Run("ttl expiry", func(t *testing.T) {
		ctx := testCtx(t)
		if _, err := ev.Put(ctx, []byte("ttl"), []client.Item{{Key: []byte("short"), Value: []byte("x"), TTL: time.Second}, item("long", "y")}); err != nil {
			t.Fatal(err)
		}
		rec, err := ev.Get(ctx, []byte("ttl"))
		if err != nil || len(rec.Items) != 2 || rec.Items[1].ExpireTime.IsZero() {
			t.Fatalf("before expiry: %+v, %v", rec, err)
		}
		time.Sleep(1500 * time.Millisecond)
		rec, err = ev.Get(ctx, []byte("ttl"))
		if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Key) != "long" {
			t.Fatalf("after expiry: %+v, %v", rec, err)
		}
	})

	t.Run("binary protobuf and JSON bodies", func(t *testing.T) {
		ctx := testCtx(t)
		id := []byte{0, 1, '.', '*', 0xff}
		seq, err := ev.Put(ctx, id, []client.Item{{Key: []byte{0xfe}, Value: []byte{0, 0}}})
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(subjects.Read("ev", "get"))
		msg.Data = []byte(fmt.Sprintf(`{"id":"AAEuKv8=","minSeq":"%d"}`, seq))
		reply, err := nc.RequestMsgWithContext(ctx, msg)
		if err != nil || reply.Header.Get(subjects.HeaderErrorCode) != "" {
			t.Fatalf("JSON get: %v %s", err, reply.Data)
		}
		if want := `"key":"/g=="`; !bytes.Contains(reply.Data, []byte(want)) {
			t.Fatalf("JSON get reply %s lacks %s", reply.Data, want)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		ctx := testCtx(t)
		tests := []struct {
			name    string
			call    func() error
			wantErr error
		}{
			{"empty id", func() error { _, err := ev.Put(ctx, nil, []client.Item{item("k", "v")}); return err }, client.ErrInvalidArgument},
			{"id too long", func() error {
				_, err := ev.Put(ctx, bytes.Repeat([]byte("i"), 1025), []client.Item{item("k", "v")})
				return err
			}, client.ErrInvalidArgument},
			{"no items", func() error { _, err := ev.Put(ctx, []byte("x"), nil); return err }, client.ErrInvalidArgument},
			{"oversized value", func() error {
				// Beyond the largest value (64 MiB), which is uploaded in parts
				// (ADR 025): refused before any part is stored.
				_, err := ev.Put(ctx, []byte("x"), []client.Item{{Key: []byte("k"), Value: make([]byte, 64<<20+1)}})
				return err
			}, client.ErrInvalidArgument},
			{"unknown namespace", func() error { _, err := c.KeyValue("nope").Get(ctx, []byte("x")); return err }, client.ErrNamespaceNotFound},
			{"bad page token", func() error { _, err := ev.Get(ctx, []byte("x"), client.PageToken("!!")); return err }, client.ErrInvalidArgument},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.call(); !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			})
		}
		if _, err := ev.Get(ctx, []byte("x")); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("a refused write left data behind: %v", err)
		}
		msg := nats.NewMsg(subjects.Write("ev", "put"))
		msg.Data = []byte(`{"id": "eA==", "items": [`)
		reply, err := nc.RequestMsgWithContext(ctx, msg)
		if err != nil || reply.Header.Get(subjects.HeaderErrorCode) != "INVALID_ARGUMENT" {
			t.Fatalf("malformed JSON: %v, code %q, %s", err, reply.Header.Get(subjects.HeaderErrorCode), reply.Data)
		}
	})
}
