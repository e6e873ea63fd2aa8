package neptune_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/neptune/neptunetest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func vertex(seq uint64, id, label string, props map[string]string) *prismv1.GraphChange {
	return &prismv1.GraphChange{Seq: seq, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id, Label: label, Properties: props}}}}
}

func edge(seq uint64, from, label, to string) *prismv1.GraphChange {
	return &prismv1.GraphChange{Seq: seq, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Edge{Edge: &prismv1.Edge{From: from, Label: label, To: to}}}}
}

func delVertex(seq uint64, id string) *prismv1.GraphChange {
	return &prismv1.GraphChange{Seq: seq, Event: &prismv1.GraphEvent{Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: id}}, Delete: true}}
}

// shapes returns the shapes of the requests srv accepted from index from.
func shapes(srv *neptunetest.Server, from int) []string {
	var out []string
	for _, r := range srv.Requests()[from:] {
		out = append(out, r.Shape)
	}
	return out
}

func checkpoint(t *testing.T, s *neptune.Store) uint64 {
	t.Helper()
	cp, err := s.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp
}

func mustVertex(t *testing.T, s *neptune.Store, id string) *prismv1.Vertex {
	t.Helper()
	v, err := s.GetVertex(context.Background(), id)
	if err != nil {
		t.Fatalf("GetVertex(%s): %v", id, err)
	}
	return v
}

// TestBatchIsOneRequest proves a batch costs a checkpoint read and one
// write request, whatever it holds, and that the checkpoint is written by
// it.
func TestBatchIsOneRequest(t *testing.T) {
	srv := neptunetest.New(t, "")
	s := openStore(t, srv, "ns")
	changes := []*prismv1.GraphChange{vertex(1, "a", "n", nil), edge(2, "a", "l", "b"), delVertex(3, "c"), vertex(4, "b", "n", nil)}
	if err := s.ApplyGraph(context.Background(), changes, 5); err != nil {
		t.Fatal(err)
	}
	if got := shapes(srv, 0); !slices.Equal(got, []string{"checkpoint", "batch"}) {
		t.Errorf("requests of a batch = %v, want a checkpoint read and one batch", got)
	}
	if cp := checkpoint(t, s); cp != 5 {
		t.Errorf("checkpoint = %d, want 5", cp)
	}
}

// TestRetries proves what is retried and what is not: throttling,
// concurrent modification and 5xx are retried with backoff until they
// pass, within the bound; a malformed query is not retried and is not
// blamed on the data; a refusal of the batch's data is permanent.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name          string
		status        int
		code          string
		n             int
		wantErr       bool
		wantPermanent bool
		wantRequests  int // batch requests sent
	}{
		{"throttled 429", http.StatusTooManyRequests, "ThrottlingException", 3, false, false, 4},
		{"throttled 500", http.StatusInternalServerError, "ThrottlingException", 2, false, false, 3},
		{"concurrent modification", http.StatusInternalServerError, "ConcurrentModificationException", 5, false, false, 6},
		{"internal failure", http.StatusInternalServerError, "InternalFailureException", 1, false, false, 2},
		{"bad gateway", http.StatusBadGateway, "Bad Gateway", 1, false, false, 2},
		{"throttled past the bound", http.StatusTooManyRequests, "ThrottlingException", 100, true, false, 6},
		{"malformed query", http.StatusBadRequest, "MalformedQueryException", 1, true, false, 1},
		{"access denied", http.StatusForbidden, "AccessDeniedException", 1, true, false, 1},
		{"constraint violation", http.StatusBadRequest, "ConstraintViolationException", 1, true, true, 1},
		{"invalid parameter", http.StatusBadRequest, "InvalidParameterException", 1, true, true, 1},
		{"bad request", http.StatusBadRequest, "BadRequestException", 1, true, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := neptunetest.New(t, "")
			s := openStore(t, srv, "ns")
			srv.FailShape("batch", c.status, c.code, c.n)
			err := s.ApplyGraph(ctx, []*prismv1.GraphChange{vertex(1, "a", "n", map[string]string{"k": "v"})}, 1)
			if got := slices.Index(shapes(srv, 0), "batch"); got < 0 || len(shapes(srv, got)) != c.wantRequests {
				t.Errorf("requests %v: want %d batch requests", shapes(srv, 0), c.wantRequests)
			}
			if !c.wantErr {
				if err != nil {
					t.Fatalf("ApplyGraph after %d %s: %v", c.n, c.code, err)
				}
				if v := mustVertex(t, s, "a"); v == nil || v.GetProperties()["k"] != "v" || v.GetRevision() != 1 {
					t.Errorf("vertex after retries = %v", v)
				}
				return
			}
			var pe interface{ Permanent() bool }
			permanent := errors.As(err, &pe) && pe.Permanent()
			switch {
			case err == nil:
				t.Fatal("ApplyGraph succeeded")
			case permanent != c.wantPermanent:
				t.Errorf("ApplyGraph = %v: permanent %v, want %v", err, permanent, c.wantPermanent)
			case !c.wantPermanent && !errors.Is(err, neptune.ErrUnavailable):
				t.Errorf("ApplyGraph = %v, want ErrUnavailable", err)
			}
			var qe *neptune.QueryError
			if !errors.As(err, &qe) || qe.Code != c.code || qe.Status != c.status {
				t.Errorf("ApplyGraph = %v, want the QueryError %d %s", err, c.status, c.code)
			}
			srv.ClearFaults()
			if v := mustVertex(t, s, "a"); v != nil {
				t.Errorf("a refused batch stored %v", v)
			}
			if cp := checkpoint(t, s); cp != 0 {
				t.Errorf("a refused batch moved the checkpoint to %d", cp)
			}
		})
	}
}

// TestReadsRetry proves reads are retried too.
func TestReadsRetry(t *testing.T) {
	srv := neptunetest.New(t, "")
	s := openStore(t, srv, "ns")
	if err := s.ApplyGraph(context.Background(), []*prismv1.GraphChange{vertex(1, "a", "n", nil)}, 1); err != nil {
		t.Fatal(err)
	}
	srv.FailShape("get vertex", http.StatusTooManyRequests, "ThrottlingException", 2)
	if v := mustVertex(t, s, "a"); v == nil || v.GetLabel() != "n" {
		t.Errorf("GetVertex after throttling = %v", v)
	}
}

// TestLostAnswerConverges proves a batch whose request committed but whose
// answer was lost is not applied twice nor lost: the retry finds the
// checkpoint moved and stops; a store restarted after giving up resumes
// from the checkpoint in the graph, and the projector's redelivery of the
// same batch changes nothing.
func TestLostAnswerConverges(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "")
	s := openStore(t, srv, "ns")
	first := []*prismv1.GraphChange{vertex(1, "a", "n", map[string]string{"v": "1"}), edge(2, "a", "l", "b")}
	if err := s.ApplyGraph(ctx, first, 2); err != nil {
		t.Fatal(err)
	}

	// The answer of the next batch is lost; the client retries by itself.
	second := []*prismv1.GraphChange{delVertex(3, "a"), edge(4, "c", "l", "a"), vertex(5, "b", "m", nil)}
	srv.LoseAnswers(1)
	from := len(srv.Requests())
	if err := s.ApplyGraph(ctx, second, 5); err != nil {
		t.Fatalf("ApplyGraph with a lost answer: %v", err)
	}
	if got := shapes(srv, from); !slices.Equal(got, []string{"checkpoint", "batch", "batch", "checkpoint"}) {
		t.Errorf("requests = %v, want the batch, its retry (written nothing) and a checkpoint read", got)
	}
	check := func(s *neptune.Store) {
		t.Helper()
		if cp := checkpoint(t, s); cp != 5 {
			t.Errorf("checkpoint = %d, want 5", cp)
		}
		if v := mustVertex(t, s, "a"); v != nil {
			t.Errorf("deleted vertex a = %v", v)
		}
		if e, err := s.GetEdge(ctx, "a", "l", "b"); err != nil || e != nil {
			t.Errorf("edge of the deleted vertex = %v, %v", e, err)
		}
		if e, err := s.GetEdge(ctx, "c", "l", "a"); err != nil || e == nil || e.GetRevision() != 4 {
			t.Errorf("edge written after the delete = %v, %v", e, err)
		}
		if v := mustVertex(t, s, "b"); v == nil || v.GetLabel() != "m" || v.GetRevision() != 5 {
			t.Errorf("b = %v", v)
		}
	}
	check(s)

	// A crash: the answer is lost and the store gives up (one try). The
	// restarted store reads the checkpoint from the graph; the projector
	// redelivers the batch above the old checkpoint it knew, with a newer
	// change: only the new one applies.
	once := openStore(t, srv, "ns", neptune.WithRetry(1, time.Millisecond, time.Millisecond))
	srv.LoseAnswers(1)
	third := []*prismv1.GraphChange{vertex(6, "b", "x", nil), vertex(7, "d", "n", nil)}
	if err := once.ApplyGraph(ctx, third, 7); !errors.Is(err, neptune.ErrUnavailable) {
		t.Fatalf("ApplyGraph with a lost answer and no retry = %v, want ErrUnavailable", err)
	}
	_ = once.Close()
	restarted := openStore(t, srv, "ns")
	if cp := checkpoint(t, restarted); cp != 7 {
		t.Fatalf("checkpoint after the crash = %d, want 7 (the batch committed)", cp)
	}
	if err := restarted.ApplyGraph(ctx, append(append(slices.Clone(second), third...), vertex(8, "b", "y", nil)), 8); err != nil {
		t.Fatal(err)
	}
	if v := mustVertex(t, restarted, "b"); v.GetLabel() != "y" || v.GetRevision() != 8 {
		t.Errorf("b after the redelivery = %v, want label y at 8", v)
	}
	if v := mustVertex(t, restarted, "d"); v == nil || v.GetRevision() != 7 {
		t.Errorf("d = %v", v)
	}
	if cp := checkpoint(t, restarted); cp != 8 {
		t.Errorf("checkpoint = %d, want 8", cp)
	}
}

// TestFailedBatchResumes proves a batch that failed without committing is
// applied whole by the next store: nothing of it was half-written.
func TestFailedBatchResumes(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "")
	s := openStore(t, srv, "ns", neptune.WithRetry(1, time.Millisecond, time.Millisecond))
	batch := []*prismv1.GraphChange{vertex(1, "a", "n", nil), edge(2, "a", "l", "b"), vertex(3, "b", "n", nil)}
	srv.FailShape("batch", http.StatusInternalServerError, "InternalFailureException", 1)
	if err := s.ApplyGraph(ctx, batch, 3); err == nil {
		t.Fatal("ApplyGraph succeeded")
	}
	if v := mustVertex(t, s, "a"); v != nil {
		t.Fatalf("the failed batch stored a: %v", v)
	}
	restarted := openStore(t, srv, "ns")
	if cp := checkpoint(t, restarted); cp != 0 {
		t.Fatalf("checkpoint = %d", cp)
	}
	if err := restarted.ApplyGraph(ctx, batch, 3); err != nil {
		t.Fatal(err)
	}
	if e, err := restarted.GetEdge(ctx, "a", "l", "b"); err != nil || e == nil || e.GetRevision() != 2 {
		t.Errorf("edge = %v, %v", e, err)
	}
}

// TestAnotherWriter proves the guard: a batch computed against a
// checkpoint that another writer moved is recomputed from the new one.
func TestAnotherWriter(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "")
	a, b := openStore(t, srv, "ns"), openStore(t, srv, "ns")
	if err := a.ApplyGraph(ctx, []*prismv1.GraphChange{vertex(1, "v", "from-a", nil), vertex(2, "w", "from-a", nil)}, 2); err != nil {
		t.Fatal(err)
	}
	// b saw checkpoint 0 had it read before a wrote; simulate by a batch
	// that overlaps: only seq 3 is above the checkpoint.
	if err := b.ApplyGraph(ctx, []*prismv1.GraphChange{vertex(1, "v", "from-b", nil), vertex(3, "x", "from-b", nil)}, 3); err != nil {
		t.Fatal(err)
	}
	if v := mustVertex(t, b, "v"); v.GetLabel() != "from-a" {
		t.Errorf("v = %v: a change at or below the checkpoint was applied", v)
	}
	if v := mustVertex(t, b, "x"); v == nil {
		t.Error("x was not applied")
	}
}

// TestNamespacesApart proves two namespaces in one cluster share nothing:
// vertices, edges and checkpoints are per namespace.
func TestNamespacesApart(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "")
	one, two := openStore(t, srv, "one"), openStore(t, srv, "two")
	if err := one.ApplyGraph(ctx, []*prismv1.GraphChange{vertex(1, "a", "n", nil), edge(2, "a", "l", "b")}, 2); err != nil {
		t.Fatal(err)
	}
	if err := two.ApplyGraph(ctx, []*prismv1.GraphChange{vertex(1, "a", "other", nil), delVertex(2, "b")}, 9); err != nil {
		t.Fatal(err)
	}
	if v := mustVertex(t, one, "a"); v.GetLabel() != "n" {
		t.Errorf("one's a = %v", v)
	}
	if e, err := one.GetEdge(ctx, "a", "l", "b"); err != nil || e == nil {
		t.Errorf("one's edge after two deleted its b = %v, %v", e, err)
	}
	if cp1, cp2 := checkpoint(t, one), checkpoint(t, two); cp1 != 2 || cp2 != 9 {
		t.Errorf("checkpoints = %d, %d; want 2, 9", cp1, cp2)
	}
}

// TestNamesRoundTrip proves labels, property names and values that
// Neptune's own names could not hold come back exactly.
func TestNamesRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "")
	s := openStore(t, srv, "ns")
	props := map[string]string{"a b": "x", "`tick`": "\"quoted\"", "~id": "neptune's own", "ünï.cödé:$": "日本語\n<&>", "prism_rev": "not mine"}
	label := "Person:Admin `x` {y}"
	if err := s.ApplyGraph(ctx, []*prismv1.GraphChange{vertex(1, "id with spaces/é", label, props)}, 1); err != nil {
		t.Fatal(err)
	}
	v := mustVertex(t, s, "id with spaces/é")
	if v == nil || v.GetLabel() != label || len(v.GetProperties()) != len(props) {
		t.Fatalf("vertex = %v", v)
	}
	for k, want := range props {
		if got := v.GetProperties()[k]; got != want {
			t.Errorf("property %q = %q, want %q", k, got, want)
		}
	}
	for _, r := range srv.Requests() {
		if r.Shape == "batch" && (containsAny(r.Query, label, "ünï", "Admin")) {
			t.Errorf("data reached the query text: %s", r.Query)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return len(sub) > 0 && contains(s, sub) })
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestDefaultChain proves New with no credentials option signs with the
// SDK's default chain (here the AWS_* environment) for its region and
// trusts AWS_CA_BUNDLE.
func TestDefaultChain(t *testing.T) {
	srv := neptunetest.New(t, "ap-south-1")
	srv.Env(t)
	s, err := neptune.New(context.Background(), srv.URL, "ns", fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.ApplyGraph(context.Background(), []*prismv1.GraphChange{vertex(1, "a", "n", nil)}, 1); err != nil {
		t.Fatalf("ApplyGraph through the default chain: %v", err)
	}
	if cp := checkpoint(t, s); cp != 1 {
		t.Errorf("checkpoint = %d", cp)
	}
}

func TestNewRefuses(t *testing.T) {
	srv := neptunetest.New(t, "")
	creds := neptune.WithCredentials(srv.CredentialsProvider(), "us-east-1")
	for _, c := range []struct {
		name, endpoint, ns string
		opts               []neptune.Option
	}{
		{"empty endpoint", "", "ns", []neptune.Option{creds}},
		{"plain http", "http://127.0.0.1:8182", "ns", []neptune.Option{creds}},
		{"another path", "https://127.0.0.1:8182/gremlin", "ns", []neptune.Option{creds}},
		{"empty namespace", srv.URL, "", []neptune.Option{creds}},
		{"no retries", srv.URL, "ns", []neptune.Option{creds, neptune.WithRetry(0, time.Millisecond, time.Second)}},
		{"nil client", srv.URL, "ns", []neptune.Option{creds, neptune.WithHTTPClient(nil)}},
	} {
		if s, err := neptune.New(context.Background(), c.endpoint, c.ns, c.opts...); err == nil {
			_ = s.Close()
			t.Errorf("%s: New succeeded", c.name)
		}
	}
	s, err := neptune.New(context.Background(), "neptune.example:8182", "ns", creds)
	if err != nil {
		t.Fatalf("New of host:port: %v", err)
	}
	_ = s.Close()
	if _, err := s.Checkpoint(context.Background()); !errors.Is(err, neptune.ErrClosed) {
		t.Errorf("Checkpoint after Close = %v, want ErrClosed", err)
	}
}

// TestWrongCredentials proves a store signing with credentials Neptune
// does not accept gets AccessDeniedException once (not retried), as an
// unavailable target, not as bad data.
func TestWrongCredentials(t *testing.T) {
	srv := neptunetest.New(t, "eu-west-2")
	wrong := srv.Credentials
	wrong.SecretAccessKey = "wrong"
	for _, c := range []struct {
		name   string
		creds  aws.Credentials
		region string
		want   string
	}{
		{"secret", wrong, "eu-west-2", "InvalidSignatureException"},
		{"region", srv.Credentials, "eu-west-1", "InvalidSignatureException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(srv.Refused())
			s := openStore(t, srv, "ns", neptune.WithCredentials(credentials.NewStaticCredentialsProvider(c.creds.AccessKeyID, c.creds.SecretAccessKey, c.creds.SessionToken), c.region))
			err := s.ApplyGraph(context.Background(), []*prismv1.GraphChange{vertex(1, "a", "n", nil)}, 1)
			var qe *neptune.QueryError
			if !errors.As(err, &qe) || qe.Status != http.StatusForbidden || qe.Code != "AccessDeniedException" || !errors.Is(err, neptune.ErrUnavailable) {
				t.Fatalf("ApplyGraph = %v, want 403 AccessDeniedException matching ErrUnavailable", err)
			}
			if got := srv.Refused()[before:]; !slices.Equal(got, []string{c.want}) {
				t.Errorf("refusals = %v, want one %s", got, c.want)
			}
		})
	}
}

// TestDrop proves Drop deletes a namespace's vertices, edges and
// checkpoint in chunks and nothing of another namespace.
func TestDrop(t *testing.T) {
	ctx := context.Background()
	srv := neptunetest.New(t, "")
	one, two := openStore(t, srv, "one"), openStore(t, srv, "two")
	var changes []*prismv1.GraphChange
	for i := range 2500 {
		changes = append(changes, vertex(uint64(i+1), fmt.Sprintf("v%d", i), "n", nil))
	}
	changes = append(changes, edge(2501, "v1", "l", "v2"))
	for _, s := range []*neptune.Store{one, two} {
		if err := s.ApplyGraph(ctx, changes, 2501); err != nil {
			t.Fatal(err)
		}
	}
	from := len(srv.Requests())
	if err := one.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := shapes(srv, from); !slices.Equal(got, []string{"drop", "drop", "drop", "drop"}) {
		t.Errorf("drop requests = %v, want 3 chunks of vertices and the checkpoint", got)
	}
	if cp := checkpoint(t, one); cp != 0 {
		t.Errorf("checkpoint after Drop = %d", cp)
	}
	if v := mustVertex(t, one, "v1"); v != nil {
		t.Errorf("v1 after Drop = %v", v)
	}
	if e, err := one.GetEdge(ctx, "v1", "l", "v2"); err != nil || e != nil {
		t.Errorf("edge after Drop = %v, %v", e, err)
	}
	if v := mustVertex(t, two, "v2499"); v == nil || checkpoint(t, two) != 2501 {
		t.Errorf("the other namespace lost data: %v", v)
	}
	if err := one.ApplyGraph(ctx, changes[:1], 1); err != nil || mustVertex(t, one, "v0") == nil {
		t.Errorf("apply after Drop: %v", err)
	}
}
