package kit

import (
	"errors"
	"maps"
	"testing"
)

func TestTagsRoundTrip(t *testing.T) {
	for _, tags := range []map[string]string{
		{"a": "1"},
		{"b": "", "": "x", "a": "\x00\xff"},
		{"long": string(make([]byte, 300))},
	} {
		got, err := DecodeTags(EncodeTags(tags))
		if err != nil || !maps.Equal(got, tags) {
			t.Errorf("DecodeTags(EncodeTags(%q)) = %q, %v", tags, got, err)
		}
	}
	if b := EncodeTags(nil); b != nil {
		t.Errorf("EncodeTags(nil) = %q, want nil", b)
	}
	if got, err := DecodeTags(nil); got != nil || err != nil {
		t.Errorf("DecodeTags(nil) = %q, %v", got, err)
	}
}

// The stored form is key-ordered length-prefixed pairs; both SQL backends
// hold it in their tables, so it must not change.
func TestEncodeTagsFormat(t *testing.T) {
	got := EncodeTags(map[string]string{"b": "2", "a": "xy"})
	want := "\x01a\x02xy\x01b\x012"
	if string(got) != want {
		t.Errorf("EncodeTags = %q, want %q", got, want)
	}
}

func TestDecodeTagsMalformed(t *testing.T) {
	for _, b := range []string{"\x05ab", "\x01a", "\x01a\x03xy", "\xff"} {
		if _, err := DecodeTags([]byte(b)); !errors.Is(err, ErrBadTags) {
			t.Errorf("DecodeTags(%q): err = %v, want ErrBadTags", b, err)
		}
	}
}
