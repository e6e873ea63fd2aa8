package natskv_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/prism-data/prism/backends/natskv"
)

// validToken is what one token of a NATS KV key may hold: the KV key
// alphabet without the '.' that separates tokens.
var validToken = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)

var tokenSeeds = [][]byte{
	nil, {}, {0}, {0xff, 0xfe}, []byte("user-42"), []byte("a.b*c>d e"), []byte("~"), []byte("="),
	[]byte("=AA"), []byte("日本語"), []byte("_"), []byte("-"), bytes.Repeat([]byte{7}, 1024),
}

func TestEncodeTokenExamples(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, "="},
		{[]byte{}, "="},
		{[]byte("user-42_A"), "user-42_A"},
		{[]byte("a.b"), "=YS5i"},
		{[]byte{0}, "=AA"},
		{[]byte("="), "=PQ"},
	}
	for _, tt := range tests {
		if got := natskv.EncodeToken(tt.in); got != tt.want {
			t.Errorf("EncodeToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeTokenRejectsNonCanonical(t *testing.T) {
	for _, tok := range []string{
		"",       // empty
		"a.b",    // dot
		"a=b",    // '=' inside a plain token
		"=YWJj",  // base64 of "abc", which is plain
		"=AB",    // non-zero padding bits (canonical is "=AA")
		"=A",     // truncated base64
		"=YS5i=", // padding
		"~7E",    // subjects.EncodeID's escape is not ours
		"a b",
	} {
		if b, err := natskv.DecodeToken(tok); err == nil {
			t.Errorf("DecodeToken(%q) = %q, want an error", tok, b)
		}
	}
}

// Any bytes encode to a valid KV key token that decodes back to them.
func FuzzEncodeToken(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tok := natskv.EncodeToken(b)
		if !validToken.MatchString(tok) {
			t.Fatalf("EncodeToken(%x) = %q: not a valid KV key token", b, tok)
		}
		got, err := natskv.DecodeToken(tok)
		if err != nil {
			t.Fatalf("DecodeToken(%q): %v", tok, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("DecodeToken(EncodeToken(%x)) = %x", b, got)
		}
	})
}

// Every token DecodeToken accepts is the one EncodeToken makes: the
// encoding is canonical, so one id has one key.
func FuzzDecodeToken(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add(natskv.EncodeToken(s))
		f.Add(string(s))
	}
	f.Fuzz(func(t *testing.T, tok string) {
		b, err := natskv.DecodeToken(tok)
		if err != nil {
			return
		}
		if again := natskv.EncodeToken(b); again != tok {
			t.Fatalf("DecodeToken(%q) = %x, which encodes to %q", tok, b, again)
		}
	})
}
