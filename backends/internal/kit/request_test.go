package kit

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// wantRequestError checks that err is a *RequestError with text want.
func wantRequestError(t *testing.T, err error, want string) {
	t.Helper()
	var re *RequestError
	if !errors.As(err, &re) || err.Error() != want {
		t.Errorf("err = %v, want *RequestError %q", err, want)
	}
}

func TestCheckGetAndScan(t *testing.T) {
	_, _, err := CheckGet(nil)
	wantRequestError(t, err, "invalid request: nil request")
	_, _, err = CheckGet(&prismv1.GetRequest{Keys: [][]byte{[]byte("k")}, Range: &prismv1.KeyRange{}})
	wantRequestError(t, err, "invalid request: both keys and range are set")
	_, _, err = CheckGet(&prismv1.GetRequest{PageToken: "!"})
	wantRequestError(t, err, `invalid page token: "!"`)
	after, ok, err := CheckGet(&prismv1.GetRequest{PageToken: "Yw"})
	if err != nil || !ok || string(after) != "c" {
		t.Errorf("CheckGet = %q, %v, %v", after, ok, err)
	}

	_, _, err = CheckScan(nil)
	wantRequestError(t, err, "invalid request: nil request")
	after, ok, err = CheckScan(&prismv1.ScanRequest{PageToken: "~"})
	if err != nil || !ok || after == nil || len(after) != 0 {
		t.Errorf("CheckScan(~) = %q, %v, %v", after, ok, err)
	}
}

func TestRangeWindow(t *testing.T) {
	_, err := RangeWindow(nil)
	wantRequestError(t, err, "invalid request: nil request")
	_, err = RangeWindow(&prismv1.ReadRangeRequest{})
	wantRequestError(t, err, "invalid request: empty series_id")

	req := &prismv1.ReadRangeRequest{
		SeriesId:  []byte("s"),
		Range:     &prismv1.TimeRange{Start: &timestamppb.Timestamp{Seconds: 1}, End: &timestamppb.Timestamp{Seconds: 9}},
		PageToken: EncodeEventToken(TokenRange, Pos{Sec: 4, ID: []byte("e")}),
		PageSize:  5000,
	}
	w, err := RangeWindow(req)
	if err != nil || w.Lo.Compare(Pos{Sec: 4, ID: []byte("e\x00")}) != 0 || w.Hi.Compare(Pos{Sec: 9}) != 0 || w.Size != MaxPageSize || w.Empty() {
		t.Errorf("RangeWindow = %+v, %v", w, err)
	}
	req.Descending = true
	if w, err = RangeWindow(req); err != nil || w.Lo.Compare(Pos{Sec: 1}) != 0 || w.Hi.Compare(Pos{Sec: 4, ID: []byte("e")}) != 0 {
		t.Errorf("descending RangeWindow = %+v, %v", w, err)
	}
	req.PageToken = EncodeEventToken(TokenRange, Pos{Sec: 0, ID: []byte("e")})
	if w, err = RangeWindow(req); err != nil || !w.Empty() {
		t.Errorf("RangeWindow past the start = %+v, %v; want an empty window", w, err)
	}
}

func TestSearchWindow(t *testing.T) {
	tooMany := map[string]string{}
	for i := range MaxSearchTags + 1 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	for _, tt := range []struct {
		name string
		req  *prismv1.SearchRequest
		want string
	}{
		{"nil", nil, "invalid request: nil request"},
		{"too many tags", &prismv1.SearchRequest{Tags: tooMany}, "invalid request: 65 tags, at most 64"},
		{"range token", &prismv1.SearchRequest{PageToken: EncodeEventToken(TokenRange, Pos{ID: []byte("a")})}, ""},
		{"other series", &prismv1.SearchRequest{SeriesId: []byte("s"),
			PageToken: EncodeEventToken(TokenSearch, Pos{Series: []byte("t"), ID: []byte("a")})},
			"invalid page token: token of another series"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := SearchWindow(tt.req)
			if tt.want == "" {
				var re *RequestError
				if !errors.As(err, &re) || !re.Token {
					t.Errorf("err = %v, want a token *RequestError", err)
				}
				return
			}
			wantRequestError(t, err, tt.want)
		})
	}

	token := EncodeEventToken(TokenSearch, Pos{Sec: 2, Series: []byte("s"), ID: []byte("a")})
	w, keys, err := SearchWindow(&prismv1.SearchRequest{SeriesId: []byte("s"), Tags: map[string]string{"b": "1", "a": "2"}, PageToken: token})
	if err != nil || !slices.Equal(keys, []string{"a", "b"}) || w.Lo.Compare(Pos{Sec: 2, ID: []byte("a\x00")}) != 0 || w.Size != DefaultPageSize {
		t.Errorf("SearchWindow in a series = %+v, %q, %v", w, keys, err)
	}
	w, _, err = SearchWindow(&prismv1.SearchRequest{PageToken: token})
	if err != nil || w.Lo.Compare(Pos{Sec: 2, Series: []byte("s"), ID: []byte("a\x00")}) != 0 {
		t.Errorf("SearchWindow across series = %+v, %v", w, err)
	}
}
