package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/pii"
	"github.com/prism-data/prism/pii/kmstest"
	"github.com/prism-data/prism/subjects"
)

// kmsNodeConfig is a one-node config on a free port whose KEK is spec.
func kmsNodeConfig(t *testing.T, spec string) node.Config {
	return node.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", DrainTimeout: 10 * time.Second, Nodes: 1, PIIKEK: spec}
}

// TestServeWithKMSKEK: a node given --pii-kek awskms:ALIAS finds the
// stand-in KMS through the SDK's environment (endpoint, CA bundle,
// credentials, region), checks the key at start, and wraps the data keys
// of a PII namespace with it; the stream holds ciphertext only.
func TestServeWithKMSKEK(t *testing.T) {
	ctx := context.Background()
	s := kmstest.New(t, "eu-north-1")
	arn := s.CreateKey(t, "alias/prism-pii")
	s.Env(t)

	users := namespaces.Namespace{Name: "users", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong,
		Fields: namespaces.NewNames("email"), PII: namespaces.NewPIIFields(namespaces.PIIField{Name: "email", Kind: pii.KindEmail})}
	n, err := node.Start(ctx, kmsNodeConfig(t, "awskms:alias/prism-pii"), slog.New(slog.NewTextHandler(io.Discard, nil)), node.Seed{Namespaces: []namespaces.Namespace{users}, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(ctx) })
	if got := n.Keyring().KEKID(); got != "awskms:"+arn {
		t.Fatalf("KEK %s, want awskms:%s", got, arn)
	}
	var ops []string
	for _, c := range s.Calls() {
		ops = append(ops, c.Op)
	}
	if !slices.Equal(ops, []string{"DescribeKey", "Encrypt", "Decrypt"}) {
		t.Fatalf("KMS calls at start %v; want DescribeKey and the check's Encrypt, Decrypt", ops)
	}

	c, _ := nodetest.Client(t, n.URL())
	kv := c.KeyValue("users")
	const email = "ada.kms@example.com"
	if _, err := kv.Put(ctx, []byte("u1"), []client.Item{{Key: []byte("email"), Value: []byte(email)}}); err != nil {
		t.Fatal(err)
	}
	rec, err := kv.Get(ctx, []byte("u1"))
	if err != nil || len(rec.Items) != 1 || string(rec.Items[0].Value) != email {
		t.Fatalf("get = %+v, %v; want the email back", rec, err)
	}
	dks, err := n.Keyring().DataKeys(ctx, "users")
	if err != nil || len(dks) != 1 || dks[0].KEKID != "awskms:"+arn {
		t.Fatalf("data keys %+v, %v; want one wrapped by the KMS key", dks, err)
	}
	stream, err := n.JetStream().Stream(ctx, subjects.Stream("users"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, subjects.KeyValueEvent("users", []byte("u1")))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Data) == 0 || bytes.Contains(msg.Data, []byte(email)) {
		t.Fatalf("the stream's event (%d bytes) is empty or holds the email in plaintext", len(msg.Data))
	}
	if n := len(s.Refused()); n != 0 {
		t.Fatalf("the stand-in refused %v", s.Refused())
	}
}

// TestServeRefusesAWrongKMSKey: a key KMS does not know, one the
// credentials may not use, or credentials KMS refuses fail the start with
// a message naming the flag and the cause.
func TestServeRefusesAWrongKMSKey(t *testing.T) {
	ctx := context.Background()
	s := kmstest.New(t, "")
	denied := s.CreateKey(t, "alias/denied")
	s.Deny(denied)
	s.CreateKey(t, "alias/prism")
	wrapOnly := s.CreateKey(t, "alias/no-decrypt")
	s.Deny(wrapOnly, "Decrypt")
	for _, tc := range []struct {
		name, spec, want string
		env              func(t *testing.T)
	}{
		{"unknown key", "awskms:alias/missing", "NotFoundException", nil},
		{"denied key", "awskms:" + denied, "AccessDeniedException", nil},
		{"key without kms:Decrypt", "awskms:alias/no-decrypt", "cannot wrap and unwrap", nil},
		{"wrong secret", "awskms:alias/prism", "InvalidSignatureException", func(t *testing.T) {
			t.Setenv("AWS_SECRET_ACCESS_KEY", "not-"+s.Credentials.SecretAccessKey)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Env(t)
			if tc.env != nil {
				tc.env(t)
			}
			n, err := node.Start(ctx, kmsNodeConfig(t, tc.spec), slog.New(slog.NewTextHandler(io.Discard, nil)), node.Seed{})
			if err == nil {
				_ = n.Close(ctx)
				t.Fatal("the node started with a key it cannot use")
			}
			if !errors.Is(err, pii.ErrKEKRefused) || !strings.Contains(err.Error(), "--pii-kek") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start: %v; want ErrKEKRefused naming --pii-kek and %s", err, tc.want)
			}
		})
	}
	if calls := s.Calls(); slices.ContainsFunc(calls, func(c kmstest.Call) bool { return c.Op == "Encrypt" && c.KeyID != wrapOnly }) {
		t.Fatalf("a refused key was used: %+v", calls)
	}
}
