package kit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestPageSize(t *testing.T) {
	for _, tt := range []struct {
		in   uint32
		want int
	}{{0, 100}, {1, 1}, {999, 999}, {1000, 1000}, {1001, 1000}, {1 << 31, 1000}} {
		if got := PageSize(tt.in); got != tt.want {
			t.Errorf("PageSize(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// Key tokens are the unpadded base64url of the last key, "~" after the
// empty key: the format every backend shares.
func TestKeyTokenFormat(t *testing.T) {
	for _, tt := range []struct {
		key  []byte
		want string
	}{
		{nil, "~"},
		{[]byte{}, "~"},
		{[]byte("c"), "Yw"},
		{[]byte{0xfb, 0xff}, "-_8"},
	} {
		got := EncodeKeyToken(tt.key)
		if got != tt.want {
			t.Errorf("EncodeKeyToken(%q) = %q, want %q", tt.key, got, tt.want)
		}
		last, ok, err := DecodeKeyToken(got)
		if err != nil || !ok || !bytes.Equal(last, tt.key) || last == nil {
			t.Errorf("DecodeKeyToken(%q) = %q, %v, %v; want %q, true, nil", got, last, ok, err, tt.key)
		}
	}
	if last, ok, err := DecodeKeyToken(""); last != nil || ok || err != nil {
		t.Errorf(`DecodeKeyToken("") = %q, %v, %v; want the first page`, last, ok, err)
	}
}

func TestDecodeKeyTokenMalformed(t *testing.T) {
	for _, token := range []string{"!!!", "a=", "YQ==", "~~", "@", "Y"} {
		_, _, err := DecodeKeyToken(token)
		var re *RequestError
		if !errors.As(err, &re) || !re.Token {
			t.Errorf("DecodeKeyToken(%q): err = %v, want a token *RequestError", token, err)
			continue
		}
		if want := `invalid page token: "` + token + `"`; err.Error() != want {
			t.Errorf("DecodeKeyToken(%q): err = %q, want %q", token, err, want)
		}
	}
	// A token of the standard alphabet is refused: tokens have one spelling.
	if _, _, err := DecodeKeyToken(base64.RawStdEncoding.EncodeToString([]byte{0xfb, 0xff})); err == nil {
		t.Error("DecodeKeyToken of standard base64: no error")
	}
}
