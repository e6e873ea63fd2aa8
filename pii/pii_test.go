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

func TestSealBindsNamespaceRecordAndField(t *testing.T) {
	kek := newKEK(t)
	dk, s, err := pii.NewDataKey("orders-1", kek)
	if err != nil {
		t.Fatal(err)
	}
	email := []byte("ada@example.com")
	sealed := s.Seal("orders", []byte("user-1"), "email", email)
	if bytes.Contains(sealed, email) {
		t.Fatal("the sealed value holds the plaintext")
	}
	if kid, err := pii.KeyIDOf(sealed); err != nil || kid != "orders-1" {
		t.Fatalf("KeyIDOf = %q, %v", kid, err)
	}
	// A reader that unwraps the stored data key opens it.
	r, err := pii.OpenDataKey(dk, kek)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Open("orders", []byte("user-1"), "email", sealed)
	if err != nil || !bytes.Equal(got, email) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name      string
		ns, field string
		id        []byte
		sealed    []byte
		want      error
	}{
		{"moved to another record", "orders", "email", []byte("user-2"), sealed, pii.ErrDecrypt},
		{"moved to another field", "orders", "name", []byte("user-1"), sealed, pii.ErrDecrypt},
		{"moved to another namespace", "billing", "email", []byte("user-1"), sealed, pii.ErrDecrypt},
		{"changed", "orders", "email", []byte("user-1"), tampered, pii.ErrDecrypt},
		{"not sealed", "orders", "email", []byte("user-1"), email, pii.ErrMalformed},
		{"truncated", "orders", "email", []byte("user-1"), sealed[:12], pii.ErrMalformed},
		// Length prefixes: ("or","ders…") is not ("orders", …).
		{"parts shifted", "order", "email", []byte("suser-1"), sealed, pii.ErrDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := r.Open(tc.ns, tc.id, tc.field, tc.sealed)
			if !errors.Is(err, tc.want) || v != nil {
				t.Fatalf("Open = %q, %v; want %v", v, err, tc.want)
			}
		})
	}
	// Two seals of one value differ (random nonce).
	if bytes.Equal(sealed, s.Seal("orders", []byte("user-1"), "email", email)) {
		t.Fatal("sealing twice gave the same bytes")
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
	old := s1.Seal("ns", []byte("r"), "f", []byte("v1"))
	if _, err := s2.Open("ns", []byte("r"), "f", old); err == nil || !strings.Contains(err.Error(), "k1") {
		t.Fatalf("opening a k1 value with k2: %v, want an error naming k1", err)
	}
	for _, s := range []fmt.Stringer{kek} {
		if strings.Contains(fmt.Sprintf("%v %#v", s, s), "\\x") {
			t.Fatal("a KEK prints key bytes")
		}
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
	f.Add(s.Seal("ns", []byte("id"), "f", []byte("v")))
	f.Add([]byte{1, 1, 'k'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Open("ns", []byte("id"), "f", b)
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
