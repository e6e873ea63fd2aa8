package itest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
)

// cli runs a prism CLI command against p and returns its combined output.
func (p *prismProc) cli(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(prismBin, append(args, "--nats-url", p.url)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustCLI runs a prism CLI command that must succeed.
func (p *prismProc) mustCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.cli(t, "", args...)
	if err != nil {
		t.Fatalf("prism %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeSpec writes a namespace YAML file and returns its path.
func writeSpec(t testing.TB, spec string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ns.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// configDir writes each spec (a namespace's YAML) to a file of a new
// directory, for prism serve --config, and returns the directory.
func configDir(t testing.TB, specs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, spec := range specs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ns%02d.yaml", i)), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// nsGet returns namespace name as prism ns get -o json prints it.
func (p *prismProc) nsGet(t testing.TB, name string) namespaces.AdminNamespace {
	t.Helper()
	var n namespaces.AdminNamespace
	if err := json.Unmarshal([]byte(p.mustCLI(t, "ns", "get", name, "-o", "json")), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// untilServed retries write while its namespace is not served yet
// (NAMESPACE_NOT_FOUND), for at most limit, and returns how long that took.
// Any other error, or limit passing, fails the test.
func untilServed(t testing.TB, limit time.Duration, write func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := write()
		if err == nil {
			return time.Since(start)
		}
		if !errors.Is(err, client.ErrNamespaceNotFound) || time.Since(start) > limit {
			t.Fatalf("namespace not served after %v: %v", time.Since(start), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// putUntilServed puts id once its namespace is served (within 30 s) and
// returns how long that took.
func putUntilServed(t testing.TB, kv *client.KeyValue, id string) time.Duration {
	t.Helper()
	return untilServed(t, 30*time.Second, func() error {
		_, err := kv.Put(testCtx(t), []byte(id), []client.Item{item("v", id)})
		return err
	})
}

const ordersSpec = `name: orders
abstraction: keyvalue
backend: sqlite
consistency: eventual
team: checkout
`

// TestApplyLiveAndRestart applies namespaces to a running prism with the
// CLI, changes one live, deletes, purges and restarts, checking the
// registry is the source of truth.
func TestApplyLiveAndRestart(t *testing.T) {
	p := startPrism(t, t.TempDir(), 0)
	_, c := p.connect(t)
	ctx := testCtx(t)
	kv := c.KeyValue("orders")

	if _, err := kv.Put(ctx, []byte("x"), []client.Item{item("v", "x")}); !errors.Is(err, client.ErrNamespaceNotFound) {
		t.Fatalf("put before apply: %v, want NAMESPACE_NOT_FOUND", err)
	}

	// Apply: served without a restart.
	out := p.mustCLI(t, "apply", "-f", writeSpec(t, ordersSpec))
	if !strings.Contains(out, "namespace orders: create") || !strings.Contains(out, "applied: namespace orders is at revision") {
		t.Fatalf("apply output:\n%s", out)
	}
	took := putUntilServed(t, kv, "first")
	t.Logf("new namespace served %v after prism apply returned", took)

	// Plan shows the diff against what is live, and changes nothing.
	strong := strings.Replace(ordersSpec, "consistency: eventual", "consistency: strong", 1)
	out = p.mustCLI(t, "plan", "-f", writeSpec(t, strong))
	if !strings.Contains(out, "namespace orders: update revision") || !strings.Contains(out, "~ consistency: eventual → strong (live)") {
		t.Fatalf("plan output:\n%s", out)
	}
	if got := p.nsGet(t, "orders"); got.Namespace.Consistency != namespaces.Eventual {
		t.Fatalf("plan changed the namespace: %+v", got.Namespace)
	}

	// Change consistency live: a strong write replies once it is
	// applied, so a read right after it always sees it.
	before := p.nsGet(t, "orders").Revision
	p.mustCLI(t, "apply", "-f", writeSpec(t, strong))
	if got := p.nsGet(t, "orders").Namespace.Consistency; got != namespaces.Strong {
		t.Fatalf("registry consistency after apply = %s, want strong", got)
	}
	waitRevisionServed(t, p, "orders", before)
	for i := range 200 {
		id := fmt.Sprintf("strong-%d", i)
		if _, err := kv.Put(ctx, []byte(id), []client.Item{item("v", id)}); err != nil {
			t.Fatal(err)
		}
		rec, err := kv.Get(ctx, []byte(id))
		if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != id {
			t.Fatalf("get right after strong put %s = %+v, %v: the namespace is not strong", id, rec, err)
		}
	}

	// A change of needs that changes the projector's batch size restarts
	// the projector live; strong writes keep waiting on the right one.
	busy := strong + "needs:\n  write_rps: 20000\n"
	rev := p.nsGet(t, "orders").Revision
	out = p.mustCLI(t, "apply", "-f", writeSpec(t, busy))
	if !strings.Contains(out, "~ settings.batch_size: 256 → 1024 (live)") {
		t.Fatalf("apply output:\n%s", out)
	}
	waitRevisionServed(t, p, "orders", rev)
	for i := range 50 {
		id := fmt.Sprintf("busy-%d", i)
		if _, err := kv.Put(ctx, []byte(id), []client.Item{item("v", id)}); err != nil {
			t.Fatal(err)
		}
		if rec, err := kv.Get(ctx, []byte(id)); err != nil || len(rec.Items) != 1 {
			t.Fatalf("get right after strong put %s after the projector restart = %+v, %v", id, rec, err)
		}
	}

	// Bad input: clear errors, nothing stored.
	for _, tc := range []struct{ spec, want string }{
		{"name: bad\nabstraction: document\nbackend: sqlite\n", `abstraction "document" is not supported`},
		{"name: bad\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  write_rps: -5\n", "needs.write_rps: -5 is negative"},
		{"name: bad\nabstraction: keyvalue\nbackend: sqlite\nneeds:\n  durability: durable\n", "FAILED_PRECONDITION"},
		{strings.Replace(strong, "backend: sqlite", "backend: natskv", 1), "needs a migration"},
	} {
		out, err := p.cli(t, "", "apply", "-f", writeSpec(t, tc.spec))
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("apply of a bad spec: err %v, output %q, want %q", err, out, tc.want)
		}
	}
	// A stale revision loses: someone applied since.
	out, err := p.cli(t, "", "apply", "-f", writeSpec(t, ordersSpec), "--revision", fmt.Sprint(before))
	if err == nil || !strings.Contains(out, "CONFLICT") {
		t.Errorf("apply at a stale revision: %v\n%s", err, out)
	}
	list := p.mustCLI(t, "ns", "list")
	if strings.Contains(list, "bad") || !strings.Contains(list, "orders") || !strings.Contains(list, "demo") {
		t.Fatalf("ns list:\n%s", list)
	}

	// Delete keeps the data; confirmation is required.
	if out, err := p.cli(t, "nope\n", "ns", "delete", "orders"); err == nil || !strings.Contains(out, "not confirmed") {
		t.Fatalf("unconfirmed delete: %v\n%s", err, out)
	}
	if out, err := p.cli(t, "demo\n", "ns", "delete", "demo"); err != nil {
		t.Fatalf("confirmed delete: %v\n%s", err, out)
	}
	p.mustCLI(t, "ns", "delete", "orders", "--yes")
	waitNotServed(t, kv)

	// Restart: the registry is the source of truth. orders comes back
	// deleted, demo is not re-created.
	p.mustCLI(t, "apply", "-f", writeSpec(t, strong))
	p.stop()
	p.restart()
	_, c = p.connect(t)
	kv = c.KeyValue("orders")
	rec, err := kv.Get(ctx, []byte("strong-199"))
	if err != nil || len(rec.Items) != 1 {
		t.Fatalf("after delete, re-apply and restart: get strong-199 = %+v, %v (data must be kept)", rec, err)
	}
	if got := p.nsGet(t, "orders"); got.Namespace.Consistency != namespaces.Strong || len(got.Targets) != 1 || got.Targets[0].State != "running" || got.Targets[0].Lag != 0 {
		t.Fatalf("after restart: %+v", got)
	}
	if _, err := c.KeyValue("demo").Get(ctx, []byte("x")); !errors.Is(err, client.ErrNamespaceNotFound) {
		t.Fatalf("demo after delete and restart: %v, want NAMESPACE_NOT_FOUND", err)
	}

	// Purge drops the data: applied again, the namespace is empty.
	p.mustCLI(t, "ns", "delete", "orders", "--yes", "--purge")
	waitNotServed(t, kv)
	p.mustCLI(t, "apply", "-f", writeSpec(t, strong))
	putUntilServed(t, kv, "after-purge")
	ids, _, err := kv.Scan(ctx)
	if err != nil || len(ids) != 1 || string(ids[0]) != "after-purge" {
		t.Fatalf("scan after purge and re-apply = %q, %v; want only after-purge", ids, err)
	}
}

// waitRevisionServed waits until the namespace's projector has been
// reconfigured past revision: ns get reports a running target serving the
// registry's revision.
func waitRevisionServed(t testing.TB, p *prismProc, name string, revision uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := p.nsGet(t, name)
		if n.Revision > revision && len(n.Targets) == 1 && n.Targets[0].State == "running" && n.Targets[0].Revision == n.Revision {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s not served past revision %d: %+v", name, revision, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitNotServed(t testing.TB, kv *client.KeyValue) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kv.Get(testCtx(t), []byte("any"))
		if errors.Is(err, client.ErrNamespaceNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace still served 30s after delete: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestApplyUpdatesStreamInPlace applies a timeseries namespace with
// backend: auto and changes its retention live: the stream is updated in
// place (same events, new max age), not recreated.
func TestApplyUpdatesStreamInPlace(t *testing.T) {
	p := startPrism(t, t.TempDir(), 0)
	nc, c := p.connect(t)
	ctx := testCtx(t)
	spec := "name: metrics\nabstraction: timeseries\nbackend: auto\nretention: 720h\n"
	p.mustCLI(t, "apply", "-f", writeSpec(t, spec))
	if n := p.nsGet(t, "metrics"); n.Backend != "sqlite" || n.Namespace.Backend != namespaces.BackendAuto {
		t.Fatalf("backend auto on one node without PostgreSQL: resolved %q, declared %q; want sqlite, auto", n.Backend, n.Namespace.Backend)
	}
	ts := c.TimeSeries("metrics")
	var seq uint64
	untilServed(t, 30*time.Second, func() (err error) {
		seq, err = ts.Append(ctx, []byte("cpu"), []client.Event{{Time: time.Now(), ID: []byte("1"), Payload: []byte("42")}})
		return err
	})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	streamOf := func() *jetstream.StreamInfo {
		t.Helper()
		s, err := js.Stream(ctx, "PRISM_METRICS")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo()
	}
	before := streamOf()
	if before.Config.MaxAge != 720*time.Hour {
		t.Fatalf("stream max age %v, want 720h", before.Config.MaxAge)
	}
	rev := p.nsGet(t, "metrics").Revision
	out := p.mustCLI(t, "apply", "-f", writeSpec(t, strings.Replace(spec, "720h", "24h", 1)))
	if !strings.Contains(out, "~ retention: 720h0m0s → 24h0m0s (live)") || !strings.Contains(out, "~ settings.max_age: 720h0m0s → 24h0m0s (live)") {
		t.Fatalf("apply output:\n%s", out)
	}
	waitRevisionServed(t, p, "metrics", rev)
	after := streamOf()
	if after.Config.MaxAge != 24*time.Hour {
		t.Errorf("stream max age after apply %v, want 24h", after.Config.MaxAge)
	}
	if !after.Created.Equal(before.Created) || after.State.LastSeq < seq || after.State.Msgs != before.State.Msgs {
		t.Errorf("stream recreated or lost events: before %+v created %v, after %+v created %v", before.State, before.Created, after.State, after.Created)
	}
	evs, err := ts.Latest(ctx, []byte("cpu"), 10)
	if err != nil || len(evs) != 1 || string(evs[0].Payload) != "42" {
		t.Fatalf("latest after the change = %+v, %v", evs, err)
	}
}

// TestApplyDirectoryAndHistory applies a directory of namespaces and reads
// back the history of one: who applied what, revision by revision.
func TestApplyDirectoryAndHistory(t *testing.T) {
	p := startPrism(t, t.TempDir(), 0)
	dir := t.TempDir()
	for name, spec := range map[string]string{
		"a.yaml": "name: alpha\nabstraction: keyvalue\nbackend: sqlite\n",
		"b.yaml": "name: beta\nabstraction: timeseries\nbackend: sqlite\nretention: 24h\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := p.mustCLI(t, "apply", "-f", dir)
	if !strings.Contains(out, "applied: namespace alpha") || !strings.Contains(out, "applied: namespace beta") {
		t.Fatalf("apply -f dir:\n%s", out)
	}
	if out, err := p.cli(t, "", "apply", "-f", dir, "--revision", "0"); err == nil || !strings.Contains(out, "--revision names one namespace") {
		t.Fatalf("apply -f dir --revision: %v\n%s", err, out)
	}
	p.mustCLI(t, "apply", "-f", writeSpec(t, "name: alpha\nabstraction: keyvalue\nbackend: sqlite\nconsistency: strong\nteam: search\n"))
	p.mustCLI(t, "ns", "delete", "alpha", "--yes")
	p.mustCLI(t, "apply", "-f", writeSpec(t, "name: alpha\nabstraction: keyvalue\nbackend: sqlite\n"))

	var h namespaces.AdminHistoryReply
	if err := json.Unmarshal([]byte(p.mustCLI(t, "ns", "history", "alpha", "--json")), &h); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range h.Revisions {
		ops = append(ops, r.Op)
	}
	if fmt.Sprint(ops) != "[put put delete put]" || h.Revisions[1].Entry.Namespace.Consistency != namespaces.Strong || h.Revisions[1].Entry.AppliedBy == "" {
		t.Fatalf("history = %+v", h)
	}
	table := p.mustCLI(t, "ns", "history", "alpha")
	for _, want := range []string{"created: keyvalue on sqlite, eventual", "consistency eventual → strong; team (none) → search", "deleted"} {
		if !strings.Contains(table, want) {
			t.Errorf("ns history does not say %q:\n%s", want, table)
		}
	}
}
