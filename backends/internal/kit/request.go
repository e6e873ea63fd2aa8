package kit

import (
	"bytes"
	"fmt"
	"slices"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// RequestError is what kit found wrong with a read request. Backends report
// it with their own sentinels, as "<sentinel>: <Detail>": ErrInvalidPageToken
// if Token, else ErrInvalidRequest.
type RequestError struct {
	// Token is true if the page token is at fault, false if the rest of
	// the request is.
	Token bool
	// Detail says what is wrong: the quoted token, or e.g. "nil request".
	Detail string
}

func (e *RequestError) Error() string {
	if e.Token {
		return "invalid page token: " + e.Detail
	}
	return "invalid request: " + e.Detail
}

// CheckGet checks a GetItems request and decodes its page token: after is
// the last key of the previous page, hasAfter false on the first page.
//
// Errors: a *RequestError for a nil request, one with both keys and range,
// or a token EncodeKeyToken did not make.
func CheckGet(req *prismv1.GetRequest) (after []byte, hasAfter bool, err error) {
	if req == nil {
		return nil, false, &RequestError{Detail: "nil request"}
	}
	if len(req.GetKeys()) > 0 && req.GetRange() != nil {
		return nil, false, &RequestError{Detail: "both keys and range are set"}
	}
	return DecodeKeyToken(req.GetPageToken())
}

// CheckScan is CheckGet for a ScanIDs request: after is the last id of the
// previous page.
func CheckScan(req *prismv1.ScanRequest) (after []byte, hasAfter bool, err error) {
	if req == nil {
		return nil, false, &RequestError{Detail: "nil request"}
	}
	return DecodeKeyToken(req.GetPageToken())
}

// Window is the stretch of the event order one page of a TimeSeries read
// covers: [Lo, Hi), already moved past the previous page, and the page
// size.
type Window struct {
	Lo, Hi Pos
	Size   int
}

// Empty reports whether no event can be in the window, so the query can be
// skipped.
func (w Window) Empty() bool { return w.Lo.Compare(w.Hi) >= 0 }

// RangeWindow checks a ReadRange request and returns its window. Positions
// are in the order of one series, (time, event_id): Series is nil.
//
// Errors: a *RequestError for a nil request, an empty series_id, an
// invalid range timestamp or a token EncodeEventToken did not make for
// TokenRange.
func RangeWindow(req *prismv1.ReadRangeRequest) (Window, error) {
	if req == nil {
		return Window{}, &RequestError{Detail: "nil request"}
	}
	if len(req.GetSeriesId()) == 0 {
		return Window{}, &RequestError{Detail: "empty series_id"}
	}
	lo, hi, err := RangeBounds(req.GetRange())
	if err != nil {
		return Window{}, err
	}
	after, err := DecodeEventToken(TokenRange, req.GetPageToken())
	if err != nil {
		return Window{}, err
	}
	lo, hi = Narrow(lo, hi, after, req.GetDescending())
	return Window{Lo: lo, Hi: hi, Size: PageSize(req.GetPageSize())}, nil
}

// SearchWindow checks a Search request and returns its window and its tag
// keys in order. With a series_id the positions are in the order of that
// series, (time, event_id), and Series is nil; without, they are in the
// order of all events, (time, series_id, event_id).
//
// Errors: a *RequestError for a nil request, more than MaxSearchTags tags,
// an invalid range timestamp, or a token EncodeEventToken did not make for
// TokenSearch or made for another series.
func SearchWindow(req *prismv1.SearchRequest) (w Window, keys []string, err error) {
	if req == nil {
		return w, nil, &RequestError{Detail: "nil request"}
	}
	if n := len(req.GetTags()); n > MaxSearchTags {
		return w, nil, &RequestError{Detail: fmt.Sprintf("%d tags, at most %d", n, MaxSearchTags)}
	}
	lo, hi, err := RangeBounds(req.GetRange())
	if err != nil {
		return w, nil, err
	}
	after, err := DecodeEventToken(TokenSearch, req.GetPageToken())
	if err != nil {
		return w, nil, err
	}
	if series := req.GetSeriesId(); len(series) > 0 && after != nil {
		if !bytes.Equal(after.Series, series) {
			return w, nil, &RequestError{Token: true, Detail: "token of another series"}
		}
		// Within one series the order is (time, event_id).
		after.Series = nil
	}
	lo, hi = Narrow(lo, hi, after, req.GetDescending())
	keys = make([]string, 0, len(req.GetTags()))
	for k := range req.GetTags() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return Window{Lo: lo, Hi: hi, Size: PageSize(req.GetPageSize())}, keys, nil
}
