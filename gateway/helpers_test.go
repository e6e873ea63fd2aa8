package gateway_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

const testNS = "demo"

// fixedNow is the gateway clock of the tests.
var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// env is a gateway over an in-process NATS server, one namespace served by
// a real SQLite store filled by testProjector.
type env struct {
	srv   *server.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	gw    *gateway.Gateway
	store *sqlite.Store
	proj  *testProjector
	// keyring is the gateway's, when envConfig.kek was set.
	keyring *pii.Keyring
}

type envConfig struct {
	consistency namespaces.Consistency
	waiter      gateway.AppliedWaiter // default: the projector
	opts        []gateway.Option
	// defaultWait leaves the consistency wait at its default instead of
	// the tests' 2 s.
	defaultWait bool
	// namespace changes the namespace's declaration (fields, PII).
	namespace func(*namespaces.Namespace)
	// keyring, when set, is opened on the env's JetStream with kek and
	// given to the gateway.
	kek pii.KEK
}

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	ctx := context.Background()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js := natstest.JetStream(t, nc)
	ns := namespaces.Namespace{Name: testNS, Abstraction: "keyvalue", Backend: "sqlite", Consistency: cfg.consistency}
	if cfg.namespace != nil {
		cfg.namespace(&ns)
	}
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	proj := startProjector(t, js, store)
	waiter := cfg.waiter
	if waiter == nil {
		waiter = proj
	}
	opts := []gateway.Option{gateway.WithClock(func() time.Time { return fixedNow })}
	if !cfg.defaultWait {
		opts = append(opts, gateway.WithConsistencyWait(2*time.Second))
	}
	opts = append(opts, cfg.opts...)
	var keyring *pii.Keyring
	if cfg.kek != nil {
		var err error
		if keyring, err = pii.OpenKeyring(ctx, js, pii.KeyringConfig{KEK: cfg.kek}); err != nil {
			t.Fatalf("OpenKeyring: %v", err)
		}
		t.Cleanup(keyring.Close)
		opts = append(opts, gateway.WithKeyring(keyring))
	}
	gw, err := gateway.New(nc, opts...)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := gw.AddNamespace(ns, store, waiter); err != nil {
		t.Fatalf("AddNamespace: %v", err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
	})
	return &env{srv: srv, nc: nc, js: js, gw: gw, store: store, proj: proj, keyring: keyring}
}

// testProjector applies the namespace stream to the store, one event at a
// time, and reports its progress. Pause stops it until Resume.
type testProjector struct {
	hold sync.RWMutex

	mu      sync.Mutex
	applied uint64
	changed chan struct{}
}

func startProjector(t testing.TB, js jetstream.JetStream, store *sqlite.Store) *testProjector {
	t.Helper()
	p := &testProjector{changed: make(chan struct{})}
	// Resolved like node's projectors, so that large values (ADR 025)
	// reach the store whole.
	target := projectors.ResolveChunks(js, testNS, store)
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := js.OrderedConsumer(ctx, subjects.Stream(testNS), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		p.hold.RLock()
		defer p.hold.RUnlock()
		md, err := m.Metadata()
		if err != nil {
			t.Errorf("metadata: %v", err)
			return
		}
		ev, err := subjects.DecodeKeyValueEvent(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			t.Errorf("projector: seq %d: %v", md.Sequence.Stream, err)
			return
		}
		var changes []*prismv1.KeyValueChange
		if ev != nil {
			changes = append(changes, &prismv1.KeyValueChange{Seq: md.Sequence.Stream, Event: ev})
		}
		if err := target.ApplyKeyValue(ctx, changes, md.Sequence.Stream); err != nil {
			if ctx.Err() == nil {
				t.Errorf("projector: apply seq %d: %v", md.Sequence.Stream, err)
			}
			return
		}
		p.mu.Lock()
		p.applied = md.Sequence.Stream
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(func() {
		cc.Stop()
		cancel()
	})
	return p
}

func (p *testProjector) Pause()  { p.hold.Lock() }
func (p *testProjector) Resume() { p.hold.Unlock() }

func (p *testProjector) Applied() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

func (p *testProjector) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		applied, ch := p.applied, p.changed
		p.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stuckWaiter is a projection that never applies anything.
type stuckWaiter struct{}

func (stuckWaiter) Applied() uint64 { return 0 }
func (stuckWaiter) WaitApplied(ctx context.Context, _ uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

// enc is a request body encoding.
type enc int

const (
	encJSON enc = iota
	encProto
)

func (e enc) String() string {
	if e == encProto {
		return "proto"
	}
	return "json"
}

// request sends body (already encoded) to subject and returns the reply.
func request(t testing.TB, nc *nats.Conn, subject string, body []byte, e enc) *nats.Msg {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = body
	if e == encProto {
		msg.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return reply
}

func encode(t testing.TB, m proto.Message, e enc) []byte {
	t.Helper()
	var (
		b   []byte
		err error
	)
	if e == encProto {
		b, err = proto.Marshal(m)
	} else {
		b, err = protojson.Marshal(m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call sends req in encoding e and decodes the reply into resp, or returns
// the error reply (checking that header and body agree).
func call(t testing.TB, nc *nats.Conn, subject string, req, resp proto.Message, e enc) *prismv1.Error {
	t.Helper()
	reply := request(t, nc, subject, encode(t, req, e), e)
	return decodeReply(t, reply, resp, e)
}

func decodeReply(t testing.TB, reply *nats.Msg, resp proto.Message, e enc) *prismv1.Error {
	t.Helper()
	unmarshal := protojson.Unmarshal
	wantCT := subjects.ContentTypeJSON
	if e == encProto {
		unmarshal = proto.Unmarshal
		wantCT = subjects.ContentTypeProto
	}
	if ct := reply.Header.Get(subjects.HeaderContentTypeReq); ct != wantCT {
		t.Errorf("reply content type %q, want %q", ct, wantCT)
	}
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		var er prismv1.ErrorReply
		if err := unmarshal(reply.Data, &er); err != nil {
			t.Fatalf("decode error reply %q: %v", reply.Data, err)
		}
		if got := er.GetError().GetCode().String(); got != code {
			t.Errorf("error header %s but body code %s", code, got)
		}
		if er.GetError().GetMessage() == "" {
			t.Errorf("error reply %s without message", code)
		}
		return er.GetError()
	}
	if err := unmarshal(reply.Data, resp); err != nil {
		t.Fatalf("decode reply %q: %v", reply.Data, err)
	}
	return nil
}

// mustCall is call that fails the test on an error reply.
func mustCall(t testing.TB, nc *nats.Conn, subject string, req, resp proto.Message) {
	t.Helper()
	if e := call(t, nc, subject, req, resp, encProto); e != nil {
		t.Fatalf("%s: %s: %s", subject, e.GetCode(), e.GetMessage())
	}
}

// streamMsgs returns how many messages the stream of testNS holds.
func streamMsgs(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	return uint64(len(natstest.Msgs(t, js, subjects.Stream(testNS))))
}

// storedMsg returns the message at seq in the stream of testNS.
func storedMsg(t testing.TB, js jetstream.JetStream, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	return natstest.Msg(t, js, subjects.Stream(testNS), seq)
}

func putReq(id, key, value string) *prismv1.PutRequest {
	return &prismv1.PutRequest{Id: []byte(id), Items: []*prismv1.Item{{Key: []byte(key), Value: []byte(value)}}}
}

func ptr[T any](v T) *T { return &v }

func isCode(e *prismv1.Error, code prismv1.Code) bool { return e != nil && e.GetCode() == code }
