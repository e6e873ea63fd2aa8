package kit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func TestPosOrder(t *testing.T) {
	ordered := []Pos{
		{Sec: -1, Nanos: 999},
		{Sec: 0},
		{Sec: 0, Nanos: 1},
		{Sec: 0, Nanos: 1, Series: []byte("a")},
		{Sec: 0, Nanos: 1, Series: []byte("a"), ID: []byte("x")},
		{Sec: 0, Nanos: 1, Series: []byte("a"), ID: []byte("x\x00")},
		{Sec: 0, Nanos: 1, Series: []byte("b")},
	}
	for i, p := range ordered {
		for j, q := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := p.Compare(q); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", p, q, got, want)
			}
		}
	}
	p := Pos{ID: make([]byte, 1, 8)}
	if s := p.Successor(); !bytes.Equal(s.ID, []byte{0, 0}) || s.Compare(p) <= 0 || len(p.ID) != 1 {
		t.Errorf("Successor of %v = %v", p, s)
	}
	if s := p.Successor(); &s.ID[0] == &p.ID[0] {
		t.Error("Successor shares p's ID array")
	}
}

func TestRangeBounds(t *testing.T) {
	lo, hi, err := RangeBounds(nil)
	if err != nil || lo.Sec != math.MinInt64 || hi.Sec != math.MaxInt64 {
		t.Errorf("RangeBounds(nil) = %v, %v, %v", lo, hi, err)
	}
	r := &prismv1.TimeRange{Start: &timestamppb.Timestamp{Seconds: 5, Nanos: 6}, End: &timestamppb.Timestamp{Seconds: 7}}
	lo, hi, err = RangeBounds(r)
	if err != nil || lo.Compare(Pos{Sec: 5, Nanos: 6}) != 0 || hi.Compare(Pos{Sec: 7}) != 0 {
		t.Errorf("RangeBounds(%v) = %v, %v, %v", r, lo, hi, err)
	}
	for _, tt := range []struct {
		name, want string
		r          *prismv1.TimeRange
	}{
		{"start", "invalid request: range start: ", &prismv1.TimeRange{Start: &timestamppb.Timestamp{Nanos: -1}}},
		{"end", "invalid request: range end: ", &prismv1.TimeRange{End: &timestamppb.Timestamp{Seconds: math.MaxInt64}}},
	} {
		_, _, err := RangeBounds(tt.r)
		var re *RequestError
		if !errors.As(err, &re) || re.Token || !bytes.HasPrefix([]byte(err.Error()), []byte(tt.want)) {
			t.Errorf("%s: err = %v, want a request error %q…", tt.name, err, tt.want)
		}
	}
}

func TestNarrow(t *testing.T) {
	lo, hi := Pos{Sec: 0}, Pos{Sec: 10}
	at := func(sec int64, id string) *Pos { return &Pos{Sec: sec, ID: []byte(id)} }
	for _, tt := range []struct {
		name           string
		after          *Pos
		desc           bool
		wantLo, wantHi Pos
	}{
		{"first page", nil, false, lo, hi},
		{"ascending", at(3, "x"), false, Pos{Sec: 3, ID: []byte("x\x00")}, hi},
		{"ascending before lo", at(-1, "x"), false, lo, hi},
		{"descending", at(3, "x"), true, lo, *at(3, "x")},
		{"descending after hi", at(11, "x"), true, lo, hi},
	} {
		gotLo, gotHi := Narrow(lo, hi, tt.after, tt.desc)
		if gotLo.Compare(tt.wantLo) != 0 || gotHi.Compare(tt.wantHi) != 0 {
			t.Errorf("%s: Narrow = [%v, %v), want [%v, %v)", tt.name, gotLo, gotHi, tt.wantLo, tt.wantHi)
		}
	}
}

// Event tokens are the base64url of kind, seconds (8 bytes big-endian),
// nanoseconds (4 bytes), for Search the series (uvarint length, bytes),
// then the event id: the format every backend shares.
func TestEventTokenFormat(t *testing.T) {
	p := Pos{Sec: 1, Nanos: 2, Series: []byte("s"), ID: []byte("a")}
	for _, tt := range []struct {
		kind byte
		raw  []byte
	}{
		{TokenRange, []byte{'r', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'a'}},
		{TokenSearch, []byte{'s', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 1, 's', 'a'}},
	} {
		token := EncodeEventToken(tt.kind, p)
		if want := base64.RawURLEncoding.EncodeToString(tt.raw); token != want {
			t.Errorf("EncodeEventToken(%c) = %q, want %q", tt.kind, token, want)
		}
		got, err := DecodeEventToken(tt.kind, token)
		want := p
		if tt.kind == TokenRange {
			want.Series = nil
		}
		if err != nil || got.Compare(want) != 0 {
			t.Errorf("DecodeEventToken(%c, %q) = %v, %v; want %v", tt.kind, token, got, err, want)
		}
	}
	if got, err := DecodeEventToken(TokenRange, ""); got != nil || err != nil {
		t.Errorf(`DecodeEventToken("") = %v, %v; want the first page`, got, err)
	}
	neg := Pos{Sec: -62135596800, Nanos: 999999999, ID: []byte("z")}
	if got, err := DecodeEventToken(TokenRange, EncodeEventToken(TokenRange, neg)); err != nil || got.Compare(neg) != 0 {
		t.Errorf("round trip of %v = %v, %v", neg, got, err)
	}
}

func TestDecodeEventTokenMalformed(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, tt := range []struct {
		name  string
		kind  byte
		token string
	}{
		{"not base64", TokenRange, "!!!"},
		{"padded base64", TokenRange, enc([]byte("r")) + "=="},
		{"too short", TokenRange, enc([]byte("r1234"))},
		{"unknown kind", TokenRange, enc(append([]byte("x"), make([]byte, 13)...))},
		{"search token", TokenRange, EncodeEventToken(TokenSearch, Pos{Series: []byte("s"), ID: []byte("a")})},
		{"range token", TokenSearch, EncodeEventToken(TokenRange, Pos{ID: []byte("a")})},
		{"no event id", TokenRange, enc(append([]byte("r"), make([]byte, 12)...))},
		{"nanos too large", TokenRange, enc(append([]byte("r"), 0, 0, 0, 0, 0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x00, 'a'))},
		{"event id too big", TokenRange, enc(append(append([]byte("r"), make([]byte, 12)...), bytes.Repeat([]byte{'a'}, 257)...))},
		{"empty series", TokenSearch, enc(append(append([]byte("s"), make([]byte, 12)...), 0, 'a'))},
		{"series too long", TokenSearch, enc(append(append([]byte("s"), make([]byte, 12)...), 5, 'a'))},
		{"key-value token", TokenRange, enc([]byte("some-key"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEventToken(tt.kind, tt.token)
			var re *RequestError
			if !errors.As(err, &re) || !re.Token {
				t.Errorf("err = %v, want a token *RequestError", err)
			}
		})
	}
}

func TestEventPage(t *testing.T) {
	ev := func(sec int64, series, id string) *prismv1.SeriesEvent {
		return &prismv1.SeriesEvent{SeriesId: []byte(series), Event: &prismv1.TimeSeriesEvent{
			EventId: []byte(id), EventTime: &timestamppb.Timestamp{Seconds: sec, Nanos: 5}}}
	}
	events := []*prismv1.SeriesEvent{ev(1, "s", "a"), ev(2, "t", "b"), ev(3, "u", "c")}
	if page, token := EventPage(TokenSearch, events, 3); len(page) != 3 || token != "" {
		t.Errorf("last page: %d events, token %q; want 3 and none", len(page), token)
	}
	page, token := EventPage(TokenSearch, events, 2)
	want := EncodeEventToken(TokenSearch, Pos{Sec: 2, Nanos: 5, Series: []byte("t"), ID: []byte("b")})
	if len(page) != 2 || token != want {
		t.Errorf("page: %d events, token %q; want 2 and %q", len(page), token, want)
	}
}
