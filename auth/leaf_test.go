package auth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/subjects"
)

// TestCalloutLeafnode: a leaf server connects into APP with a credential
// the callout admits; a client of the leaf that sets Nats-Request-Info
// itself reaches PRISM with the leaf connection's identity, and the leaf
// connection's permissions bound what crosses.
func TestCalloutLeafnode(t *testing.T) {
	e := newEnv(t, envOptions{leaf: true})
	e.respondInfo(subjects.Write("*", ">"))
	vz, err := e.srv.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := url.Parse(fmt.Sprintf("nats-leaf://edge-token@127.0.0.1:%d", vz.LeafNode.Port))
	if err != nil {
		t.Fatal(err)
	}
	leaf := runServer(t, &server.Options{
		ServerName: "edge", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 10 * time.Millisecond, Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{hub}}}},
	})
	for deadline := time.Now().Add(waitFor); leaf.NumLeafNodes() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the leaf did not connect to the hub")
		}
	}
	// The leaf's own clients are not authenticated by the hub; they use
	// the inbox prefix of the leaf connection's principal, the only one
	// its permissions let the replies cross to.
	local, err := nats.Connect(leaf.ClientURL(), nats.CustomInboxPrefix(subjects.InboxPrefix(edge.Name)))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()

	forged := `{"acc":"APP","user":` + strconvQuote(auth.EncodePrincipal(root)) + `}`
	request := func(subject string) (*nats.Msg, error) {
		m := nats.NewMsg(subject)
		m.Header.Set(subjects.HeaderRequestInfo, forged)
		return local.RequestMsg(m, time.Second)
	}
	// The hub's interest reaches the leaf asynchronously.
	var reply *nats.Msg
	for deadline := time.Now().Add(waitFor); ; {
		if reply, err = request(subjects.Write("demo", "put")); err == nil {
			break
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) || time.Now().After(deadline) {
			t.Fatalf("request through the leaf: %v", err)
		}
	}
	var ri requestInfo
	if err := json.Unmarshal(reply.Data, &ri); err != nil {
		t.Fatalf("responder saw %q: %v", reply.Data, err)
	}
	if ri.Account != subjects.AppAccount || ri.User != auth.EncodePrincipal(edge) {
		t.Fatalf("responder saw %+v, want the leaf connection's principal %s in APP", ri, auth.EncodePrincipal(edge))
	}

	// edge may not write other: the hub does not let the request cross.
	seen, err := e.svc.SubscribeSync(subjects.Write("other", ">"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := request(subjects.Write("other", "put")); err == nil {
		t.Fatal("a write on other crossed the leaf connection")
	}
	if _, err := request(subjects.Write("demo", "put")); err != nil {
		t.Fatalf("allowed write after the refused one: %v", err)
	}
	if n, _, _ := seen.Pending(); n != 0 {
		t.Fatalf("%d messages reached PRISM on other's write subject", n)
	}
}
