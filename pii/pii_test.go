package pii_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-data/prism/pii"
)

func newKEK(t testing.TB) *pii.FileKEK {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	if err := pii.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if err := pii.GenerateKeyFile(path); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing key")
	}
	k, err := pii.LoadFileKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// recordKey is the key of record id under s with a new secret.
func recordKey(t testing.TB, s *pii.Sealer, ns, id string, rs pii.RecordSecret) *pii.RecordKey {
	t.Helper()
	k, err := s.Record(ns, []byte(id), rs)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealBindsNamespaceRecordAndField(t *testing.T) {
	kek := newKEK(t)
	dk, s, err := pii.NewDataKey("orders-1", kek)
	if err != nil {
		t.Fatal(err)
	}
	rs := pii.NewRecordSecret()
	email := []byte("ada@example.com")
	sealed := recordKey(t, s, "orders", "user-1", rs).Seal("email", email)
	if bytes.Contains(sealed, email) {
		t.Fatal("the sealed value holds the plaintext")
	}
	if h, err := pii.Inspect(sealed); err != nil || h.KeyID != "orders-1" || h.SecretID != rs.ID {
		t.Fatalf("Inspect = %+v, %v", h, err)
	}
	// A reader that unwraps the stored data key opens it.
	r, err := pii.OpenDataKey(dk, kek)
	if err != nil {
		t.Fatal(err)
	}
	got, err := recordKey(t, r, "orders", "user-1", rs).Open("email", sealed)
	if err != nil || !bytes.Equal(got, email) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	// The same secret id with other secret bytes: a forged secret.
	forged := rs
	forged.Secret[0] ^= 1
	for _, tc := range []struct {
		name      string
		ns, field string
		id        string
		rs        pii.RecordSecret
		sealed    []byte
		want      error
	}{
		{"moved to another record", "orders", "email", "user-2", rs, sealed, pii.ErrDecrypt},
		{"moved to another field", "orders", "name", "user-1", rs, sealed, pii.ErrDecrypt},
		{"moved to another namespace", "billing", "email", "user-1", rs, sealed, pii.ErrDecrypt},
		{"changed", "orders", "email", "user-1", rs, tampered, pii.ErrDecrypt},
		{"another secret", "orders", "email", "user-1", pii.NewRecordSecret(), sealed, pii.ErrOtherSecret},
		{"a forged secret", "orders", "email", "user-1", forged, sealed, pii.ErrDecrypt},
		{"not sealed", "orders", "email", "user-1", rs, email, pii.ErrMalformed},
		{"truncated", "orders", "email", "user-1", rs, sealed[:12], pii.ErrMalformed},
		// Length prefixes: ("or","ders…") is not ("orders", …).
		{"parts shifted", "order", "email", "suser-1", rs, sealed, pii.ErrDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := recordKey(t, r, tc.ns, tc.id, tc.rs).Open(tc.field, tc.sealed)
			if !errors.Is(err, tc.want) || v != nil {
				t.Fatalf("Open = %q, %v; want %v", v, err, tc.want)
			}
		})
	}
	// Two seals of one value differ (random nonce).
	if bytes.Equal(sealed, recordKey(t, s, "orders", "user-1", rs).Seal("email", email)) {
		t.Fatal("sealing twice gave the same bytes")
	}
}

func TestRequestHashIsKeyed(t *testing.T) {
	kek := newKEK(t)
	dk, s, err := pii.NewDataKey("k1", kek)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := pii.NewDataKey("k1", kek)
	again, err := pii.OpenDataKey(dk, kek)
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("put ada@example.com")
	h := s.HashRequest(req)
	if !bytes.Equal(h, again.HashRequest(req)) {
		t.Fatal("the same data key hashed a request two ways")
	}
	if bytes.Equal(h, other.HashRequest(req)) {
		t.Fatal("another data key gave the same hash: the hash is not keyed")
	}
	if bytes.Equal(h, s.HashRequest([]byte("put bob@example.com"))) {
		t.Fatal("two requests, one hash")
	}
}

func TestDataKeysNeedTheirKEK(t *testing.T) {
	kek, other := newKEK(t), newKEK(t)
	dk, _, err := pii.NewDataKey("k1", kek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pii.OpenDataKey(dk, other); err == nil {
		t.Fatal("another KEK opened the data key")
	}
	forged := dk
	forged.KEKID = other.ID()
	if _, err := pii.OpenDataKey(forged, other); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("a data key relabelled for another KEK: %v, want ErrDecrypt", err)
	}
	// A rotated data key: each value opens with the key it names.
	_, s1, _ := pii.NewDataKey("k1", kek)
	_, s2, _ := pii.NewDataKey("k2", kek)
	rs := pii.NewRecordSecret()
	old := recordKey(t, s1, "ns", "r", rs).Seal("f", []byte("v1"))
	if _, err := recordKey(t, s2, "ns", "r", rs).Open("f", old); err == nil || !strings.Contains(err.Error(), "k1") {
		t.Fatalf("opening a k1 value with k2: %v, want an error naming k1", err)
	}
	for _, s := range []fmt.Stringer{kek, s1} {
		if strings.Contains(fmt.Sprintf("%v %#v", s, s), "\\x") {
			t.Fatal("a key prints key bytes")
		}
	}
	// Rewrap: the same data key under another KEK.
	re, err := pii.Rewrap(dk, kek, other)
	if err != nil || re.KEKID != other.ID() || re.ID != dk.ID {
		t.Fatalf("Rewrap = %+v, %v", re, err)
	}
	a, _ := pii.OpenDataKey(dk, kek)
	b, err := pii.OpenDataKey(re, other)
	if err != nil {
		t.Fatal(err)
	}
	sealed := recordKey(t, a, "ns", "r", rs).Seal("f", []byte("kept"))
	if v, err := recordKey(t, b, "ns", "r", rs).Open("f", sealed); err != nil || string(v) != "kept" {
		t.Fatalf("a value sealed before the rewrap: %q, %v", v, err)
	}
	if _, err := pii.Rewrap(dk, other, kek); err == nil {
		t.Fatal("Rewrap with the wrong source KEK succeeded")
	}
}

func TestLoadFileKEKRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"short": "abcd", "not hex": strings.Repeat("zz", 32), "too long": strings.Repeat("ab", 33)} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := pii.LoadFileKEK(path)
		if !errors.Is(err, pii.ErrBadKey) || strings.Contains(err.Error(), body) {
			t.Errorf("%s: %v; want ErrBadKey without the file's content", name, err)
		}
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct {
		kind        pii.Kind
		value, want string
	}{
		{pii.KindEmail, "ada.lovelace@example.com", "a***@example.com"},
		{pii.KindEmail, "not-an-email", "***"},
		{pii.KindName, "Ada Lovelace", "A*** L***"},
		{pii.KindName, "Émile  Zola", "É*** Z***"},
		{pii.KindPhone, "+44 20 7946 0958", "***-***-0958"},
		{pii.KindPhone, "12345", "***"},
		{pii.KindAddress, "12 Downing St, London", "***, London"},
		{pii.KindAddress, "somewhere", "***"},
		{pii.KindID, "AB123456C", "***456C"},
		{pii.KindID, "12345", "***"},
		{pii.KindGeneric, "anything at all", "***"},
		{pii.KindEmail, "", ""},
	} {
		if got := pii.Mask(tc.kind, tc.value); got != tc.want {
			t.Errorf("Mask(%s, %q) = %q, want %q", tc.kind, tc.value, got, tc.want)
		}
	}
	if _, err := pii.ParseKind("ssn"); err == nil {
		t.Error("ParseKind accepted ssn")
	}
}

// FuzzOpen: no input makes Open panic or return data it did not seal.
func FuzzOpen(f *testing.F) {
	kek, err := pii.LoadFileKEK(writeKey(f))
	if err != nil {
		f.Fatal(err)
	}
	_, s, err := pii.NewDataKey("k", kek)
	if err != nil {
		f.Fatal(err)
	}
	k, err := s.Record("ns", []byte("id"), pii.NewRecordSecret())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.Seal("f", []byte("v")))
	f.Add([]byte{2, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := k.Open("f", b)
		if err == nil && string(v) != "v" {
			t.Fatalf("opened %q from bytes it did not seal", v)
		}
	})
}

// FuzzMask: masks never panic, always show that something is hidden,
// and are never the value itself.
func FuzzMask(f *testing.F) {
	f.Add("ada@example.com", 0)
	f.Add("Ada Lovelace", 1)
	f.Add("+1 555 0100 1234", 2)
	f.Fuzz(func(t *testing.T, v string, k int) {
		kind := pii.Kinds[(k%len(pii.Kinds)+len(pii.Kinds))%len(pii.Kinds)]
		m := pii.Mask(kind, v)
		if v == "" {
			return
		}
		if !strings.Contains(m, "***") {
			t.Fatalf("Mask(%s, %q) = %q hides nothing", kind, v, m)
		}
		if !strings.Contains(v, "***") && m == v {
			t.Fatalf("Mask(%s, %q) is the value itself", kind, v)
		}
	})
}

func writeKey(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "kek")
	if err := pii.GenerateKeyFile(path); err != nil {
		tb.Fatal(err)
	}
	return path
}
