package gateway_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// second is another SQLite target of the test namespace, projected from
// the same stream as env's store.
type second struct {
	path  string
	store *sqlite.Store
	proj  *testProjector
}

func newSecond(t *testing.T, e *env) *second {
	t.Helper()
	path := filepath.Join(t.TempDir(), "second.db")
	store, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return &second{path: path, store: store, proj: startProjector(t, e.js, store)}
}

func (s *second) target() *gateway.ReadTarget {
	return &gateway.ReadTarget{Name: "second", KeyValue: s.store, Applied: s.proj}
}

func first(e *env) gateway.ReadTarget {
	return gateway.ReadTarget{Name: "sqlite", KeyValue: e.store, Applied: e.proj}
}

func getValue(t *testing.T, e *env, id string) string {
	t.Helper()
	var g prismv1.GetResponse
	mustCall(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte(id)}, &g)
	return string(g.GetItems()[0].GetValue())
}

// Sampled gets are compared against the shadow: equal records match, a
// record corrupted in the shadow is a mismatch, and a record written
// between the two reads is skipped rather than blamed.
func TestShadowReads(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, envConfig{opts: []gateway.Option{gateway.WithRegisterer(reg)}})
	sh := newSecond(t, e)
	var w prismv1.WriteResponse
	for _, id := range []string{"a", "b", "c"} {
		mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq(id, "k", "v-"+id), &w)
	}
	ctx := context.Background()
	waitBoth(t, e, sh, w.GetSeq())
	if err := e.gw.SetRouting(ctx, testNS, gateway.Routing{Primary: first(e), Shadow: sh.target(), ShadowSample: 1}); err != nil {
		t.Fatal(err)
	}
	// Corrupt record b in the shadow behind the projector's back.
	db, err := sql.Open("sqlite", sh.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Exec(`UPDATE items SET value = CAST('wrong' AS BLOB) WHERE id = CAST('b' AS BLOB)`); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("corrupted %d rows, want 1", n)
	}
	for _, id := range []string{"a", "b", "c"} {
		if got := getValue(t, e, id); got != "v-"+id {
			t.Fatalf("get %s = %q: the primary answers", id, got)
		}
	}
	key := func(result string) string {
		return "prism_gateway_shadow_reads_total{namespace=" + testNS + ",result=" + result + "}"
	}
	waitMetric(t, reg, func(m map[string]float64) bool { return m[key("match")]+m[key("mismatch")] >= 3 })
	m := metricValues(t, reg)
	if m[key("match")] != 2 || m[key("mismatch")] != 1 {
		t.Fatalf("shadow reads: %v match, %v mismatch; want 2 and 1", m[key("match")], m[key("mismatch")])
	}
	if c := e.gw.ShadowReads(testNS); c["match"] != 2 || c["mismatch"] != 1 {
		t.Fatalf("ShadowReads = %v, want 2 matches and 1 mismatch like the metric", c)
	}

	// A record missing from the shadow is a mismatch too (the primary,
	// read again, still has it at the same revision).
	if res, err := db.Exec(`DELETE FROM items WHERE id = CAST('a' AS BLOB)`); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("deleted %d rows, want 1", n)
	}
	if got := getValue(t, e, "a"); got != "v-a" {
		t.Fatalf("get a = %q", got)
	}
	waitMetric(t, reg, func(m map[string]float64) bool { return m[key("mismatch")] >= 2 })

	// With the shadow paused, a record written after the shadow's
	// checkpoint cannot be compared: the get is never slowed, the sample
	// is skipped once the shadow does not catch up.
	sh.proj.Pause()
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("d", "k", "v-d"), &w)
	if err := e.proj.WaitApplied(ctx, w.GetSeq()); err != nil {
		t.Fatal(err)
	}
	if got := getValue(t, e, "d"); got != "v-d" {
		t.Fatalf("get d = %q", got)
	}
	waitMetric(t, reg, func(m map[string]float64) bool { return m[key("skipped")] >= 1 })
	sh.proj.Resume()
}

// Moving the primary waits until the new target has what the old one had;
// reads then come from the new target, strong writes wait for both while
// fenced.
func TestSetRoutingSwitchesPrimary(t *testing.T) {
	e := newEnv(t, envConfig{consistency: namespaces.Strong, opts: []gateway.Option{gateway.WithConsistencyWait(300 * time.Millisecond)}})
	sh := newSecond(t, e)
	ctx := context.Background()
	var w prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v1"), &w)
	waitBoth(t, e, sh, w.GetSeq())

	// A new primary that does not catch up is not switched to.
	sh.proj.Pause()
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v2"), &w)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := e.gw.SetRouting(short, testNS, gateway.Routing{Primary: *sh.target(), Shadow: ptr(first(e))})
	cancel()
	if err == nil {
		t.Fatal("SetRouting to a target behind the primary succeeded")
	}
	if got := getValue(t, e, "r"); got != "v2" {
		t.Fatalf("get after a refused switch = %q, want v2 from the old primary", got)
	}
	sh.proj.Resume()
	if err := e.gw.SetRouting(ctx, testNS, gateway.Routing{Primary: *sh.target(), Shadow: ptr(first(e)), FenceShadow: true}); err != nil {
		t.Fatal(err)
	}
	// Prove reads come from the new primary: corrupt it directly.
	db, err := sql.Open("sqlite", sh.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE items SET value = CAST('from-second' AS BLOB) WHERE id = CAST('r' AS BLOB)`); err != nil {
		t.Fatal(err)
	}
	if got := getValue(t, e, "r"); got != "from-second" {
		t.Fatalf("get after the switch = %q, want the second target's value", got)
	}
	// Fenced: a strong write waits for the old target too.
	e.proj.Pause()
	var er *prismv1.Error
	if er = call(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v3"), &w, encProto); !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) {
		t.Fatalf("strong write with the fenced shadow paused: %v, want NOT_CONSISTENT_YET", er)
	}
	e.proj.Resume()
	// Unfenced, it does not.
	if err := e.gw.SetRouting(ctx, testNS, gateway.Routing{Primary: *sh.target()}); err != nil {
		t.Fatal(err)
	}
	e.proj.Pause()
	defer e.proj.Resume()
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v4"), &w)
	if got := getValue(t, e, "r"); got != "v4" {
		t.Fatalf("strong read after the write = %q, want v4", got)
	}
}

func waitBoth(t *testing.T, e *env, sh *second, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.proj.WaitApplied(ctx, seq); err != nil {
		t.Fatal(err)
	}
	if err := sh.proj.WaitApplied(ctx, seq); err != nil {
		t.Fatal(err)
	}
}

// waitMetric polls reg until ok holds; the bound is a liveness limit, not
// a speed assertion.
func waitMetric(t *testing.T, reg *prometheus.Registry, ok func(map[string]float64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(metricValues(t, reg)) {
		if time.Now().After(deadline) {
			t.Fatalf("metrics never got there: %v", metricValues(t, reg))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
