package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/client"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func connect(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := server.NewServer(&server.Options{Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func replyError(t *testing.T, m *nats.Msg, code prismv1.Code, msg string) {
	t.Helper()
	data, _ := proto.Marshal(&prismv1.ErrorReply{Error: &prismv1.Error{Code: code, Message: msg, Seq: 9}})
	r := nats.NewMsg(m.Reply)
	r.Data = data
	r.Header.Set(subjects.HeaderErrorCode, code.String())
	if err := m.RespondMsg(r); err != nil {
		t.Error(err)
	}
}

// A gateway stand-in on a real NATS server: the first put fails with
// UNAVAILABLE, the retry succeeds; the client must resend the same token.
func TestPutRetriesWithTheSameToken(t *testing.T) {
	nc := connect(t)
	var mu sync.Mutex
	var tokens []string
	_, err := nc.Subscribe(subjects.Write("demo", "put"), func(m *nats.Msg) {
		if m.Header.Get(subjects.HeaderContentTypeReq) != subjects.ContentTypeProto {
			t.Errorf("content type %q", m.Header.Get(subjects.HeaderContentTypeReq))
		}
		var req prismv1.PutRequest
		if err := proto.Unmarshal(m.Data, &req); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		tokens = append(tokens, req.GetIdempotencyToken())
		n := len(tokens)
		mu.Unlock()
		if n == 1 {
			replyError(t, m, prismv1.Code_UNAVAILABLE, "jetstream down")
			return
		}
		data, _ := proto.Marshal(&prismv1.WriteResponse{Seq: 42})
		m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nc, client.WithRetries(3, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue("demo", client.ReadYourWrites())
	seq, err := kv.Put(context.Background(), []byte("a"), []client.Item{{Key: []byte("k"), Value: []byte("v")}})
	if err != nil || seq != 42 {
		t.Fatalf("Put = %d, %v; want 42", seq, err)
	}
	if len(tokens) != 2 || tokens[0] == "" || tokens[0] != tokens[1] {
		t.Fatalf("tokens sent = %q, want the same non-empty token twice", tokens)
	}
	if kv.LastSeq() != 42 {
		t.Fatalf("LastSeq = %d", kv.LastSeq())
	}
}

func TestErrorsCarryCodeAndSeq(t *testing.T) {
	nc := connect(t)
	_, err := nc.Subscribe(subjects.Read("demo", "get"), func(m *nats.Msg) {
		var req prismv1.GetRequest
		if err := proto.Unmarshal(m.Data, &req); err != nil {
			t.Error(err)
		}
		if req.GetMinSeq() != 7 {
			t.Errorf("min_seq = %d, want 7", req.GetMinSeq())
		}
		replyError(t, m, prismv1.Code_NOT_FOUND, "record a not found")
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(nc)
	_, err = c.KeyValue("demo").Get(context.Background(), []byte("a"), client.MinSeq(7))
	var pe *client.Error
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &pe) || pe.Seq != 9 || pe.Message != "record a not found" {
		t.Fatalf("err = %#v", err)
	}
	if errors.Is(err, client.ErrConflict) {
		t.Fatal("NOT_FOUND matched ErrConflict")
	}
}

func TestNoGatewayIsUnavailable(t *testing.T) {
	nc := connect(t)
	c, _ := client.New(nc, client.WithRetries(0, 0))
	_, err := c.KeyValue("demo").Put(context.Background(), []byte("a"), nil)
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	nc := connect(t)
	if _, err := client.New(nc, client.WithTimeout(0)); err == nil {
		t.Error("zero timeout accepted")
	}
	if _, err := client.New(nc, client.WithRetries(-1, 0)); err == nil {
		t.Error("negative retries accepted")
	}
	if _, err := client.New(nil); err == nil {
		t.Error("nil connection accepted")
	}
}

// A call on a closed connection is UNAVAILABLE, which writes retry, and
// still tells the NATS error.
func TestClosedConnectionIsUnavailable(t *testing.T) {
	nc := connect(t)
	c, _ := client.New(nc, client.WithRetries(1, time.Millisecond))
	nc.Close()
	_, err := c.KeyValue("demo").Put(context.Background(), []byte("a"), nil)
	var pe *client.Error
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, nats.ErrConnectionClosed) ||
		!errors.As(err, &pe) || pe.Op != "put demo" || !strings.Contains(pe.Message, "reconnect and retry") {
		t.Fatalf("Put on a closed connection: %v, want ErrUnavailable wrapping nats.ErrConnectionClosed", err)
	}
	if _, err := c.KeyValue("demo").Get(context.Background(), []byte("a")); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Get on a closed connection: %v, want ErrUnavailable", err)
	}
}

// GetAll follows the pages and leaves the caller's options as they were,
// spare capacity included.
func TestGetAllFollowsPages(t *testing.T) {
	nc := connect(t)
	var mu sync.Mutex
	var tokens []string
	if _, err := nc.Subscribe(subjects.Read("demo", "get"), func(m *nats.Msg) {
		var req prismv1.GetRequest
		if err := proto.Unmarshal(m.Data, &req); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		tokens = append(tokens, req.GetPageToken())
		mu.Unlock()
		resp := &prismv1.GetResponse{Id: []byte("a"), Revision: 3, Items: []*prismv1.Item{{Key: []byte("k1"), Value: []byte("v1")}}, NextPageToken: "p2"}
		if req.GetPageToken() == "p2" {
			resp = &prismv1.GetResponse{Id: []byte("a"), Revision: 4, Items: []*prismv1.Item{{Key: []byte("k2"), Value: []byte("v2")}}}
		}
		data, _ := proto.Marshal(resp)
		_ = m.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(nc)
	opts := make([]client.ReadOption, 1, 4)
	opts[0] = client.PageSize(1)
	rec, err := c.KeyValue("demo").GetAll(context.Background(), []byte("a"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Items) != 2 || string(rec.Items[0].Key) != "k1" || string(rec.Items[1].Key) != "k2" || rec.Revision != 4 || rec.NextPageToken != "" {
		t.Fatalf("record %+v, want k1 and k2 at revision 4", rec)
	}
	if len(tokens) != 2 || tokens[0] != "" || tokens[1] != "p2" {
		t.Fatalf("page tokens sent %q, want \"\" then p2", tokens)
	}
	if spare := opts[:cap(opts)]; spare[1] != nil {
		t.Fatal("GetAll wrote into the spare capacity of the caller's options")
	}
}

// A request the server does not let the connection publish gets no reply;
// the client says PERMISSION_DENIED, naming the subject, not
// DEADLINE_EXCEEDED. A request that merely goes unanswered stays
// DEADLINE_EXCEEDED.
func TestRequestRefusedByServerPermissions(t *testing.T) {
	s, err := server.NewServer(&server.Options{Port: -1, NoLog: true, NoSigs: true, Users: []*server.User{{
		Username: "reader", Password: "pw",
		Permissions: &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{subjects.Read("demo", ">")}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect("", nats.InProcessServer(s), nats.UserInfo("reader", "pw"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// A silent gateway: it takes the read and never answers.
	if _, err := nc.Subscribe(subjects.Read("demo", ">"), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nc, client.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.KeyValue("demo")
	_, err = kv.Put(context.Background(), []byte("a"), []client.Item{{Key: []byte("k"), Value: []byte("v")}})
	if !errors.Is(err, client.ErrPermissionDenied) || !strings.Contains(err.Error(), subjects.Write("demo", "put")) {
		t.Fatalf("put without write: %v, want PERMISSION_DENIED naming %s", err, subjects.Write("demo", "put"))
	}
	if _, err := kv.Get(context.Background(), []byte("a")); !errors.Is(err, client.ErrDeadlineExceeded) {
		t.Fatalf("unanswered get: %v, want DEADLINE_EXCEEDED", err)
	}
}
