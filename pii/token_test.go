package pii_test

import (
	"testing"

	"github.com/prism-data/prism/pii"
)

func TestTokens(t *testing.T) {
	_, s, err := pii.NewDataKey("k1", newKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := pii.NewDataKey("k1", newKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	rs, rs2 := pii.NewRecordSecret(), pii.NewRecordSecret()
	key := func(s *pii.Sealer, ns, id string, rs pii.RecordSecret) *pii.TokenKey {
		t.Helper()
		k, err := s.Tokens(ns, []byte(id), rs)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	tok := key(s, "ns", "series-1", rs).Token("email", []byte("ada@example.com"))
	if !pii.IsToken(tok) || pii.IsToken("ada@example.com") || pii.IsToken(pii.TokenPrefix+"short") {
		t.Fatalf("IsToken: %q", tok)
	}
	if again := key(s, "ns", "series-1", rs).Token("email", []byte("ada@example.com")); again != tok {
		t.Fatalf("the same value's token differs: %q, %q", again, tok)
	}
	for name, got := range map[string]string{
		"another value":     key(s, "ns", "series-1", rs).Token("email", []byte("bob@example.com")),
		"another field":     key(s, "ns", "series-1", rs).Token("mail", []byte("ada@example.com")),
		"another record":    key(s, "ns", "series-2", rs).Token("email", []byte("ada@example.com")),
		"another namespace": key(s, "ns2", "series-1", rs).Token("email", []byte("ada@example.com")),
		"another secret":    key(s, "ns", "series-1", rs2).Token("email", []byte("ada@example.com")),
		"another data key":  key(other, "ns", "series-1", rs).Token("email", []byte("ada@example.com")),
	} {
		if got == tok {
			t.Errorf("%s: same token %q", name, got)
		}
	}
}
