package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// PII of TimeSeries namespaces (ADR 016, "TimeSeries"). The record is the
// series. A PII payload is sealed in place. A PII tag must stay findable
// by equality in every backend, so its value is replaced by a blind
// token (pii.TokenKey: a keyed hash, per series) and its sealed value
// travels in the tag sealedTagPrefix+name, base64url: no caller may write
// or search such a tag, and reads take them out again.

// sealedTagPrefix starts the tag that carries a PII tag's sealed value.
const sealedTagPrefix = namespaces.PIITagPrefix

// piiTag returns the kind of tag key in the request's namespace, and
// whether it is a PII tag. A tag named namespaces.PIIPayload is not: that
// name declares the payload PII, and a tag sealed under it would share
// the payload's associated data, so that one's ciphertext would open as
// the other's.
func piiTag(r *request, key string) (pii.Kind, bool) {
	if key == namespaces.PIIPayload {
		return "", false
	}
	return r.ns.PII.Kind(key)
}

// appendEvent is the event of an append, its PII sealed.
func (g *Gateway) appendEvent(ctx context.Context, r *request, req *prismv1.AppendRequest) (*prismv1.TimeSeriesAppend, error) {
	ev := &prismv1.TimeSeriesAppend{SeriesId: req.GetSeriesId(), Events: req.GetEvents()}
	if !r.hasPII() {
		return ev, nil
	}
	series := req.GetSeriesId()
	rk, err := g.sealKey(ctx, r, series)
	if err != nil {
		return nil, err
	}
	tk, err := g.tokenKey(ctx, r, series, true)
	if err != nil {
		return nil, err
	}
	_, piiPayload := r.ns.PII.Kind(namespaces.PIIPayload)
	ev.Events = make([]*prismv1.TimeSeriesEvent, len(req.GetEvents()))
	for i, in := range req.GetEvents() {
		out := &prismv1.TimeSeriesEvent{EventTime: in.GetEventTime(), EventId: in.GetEventId(), Payload: in.GetPayload()}
		if piiPayload && len(in.GetPayload()) > 0 {
			out.Payload = rk.Seal(namespaces.PIIPayload, in.GetPayload())
		}
		if len(in.GetTags()) > 0 {
			out.Tags = make(map[string]string, len(in.GetTags()))
		}
		for k, v := range in.GetTags() {
			if _, ok := piiTag(r, k); !ok {
				out.Tags[k] = v
				continue
			}
			out.Tags[k] = tk.Token(k, []byte(v))
			out.Tags[sealedTagPrefix+k] = base64.RawURLEncoding.EncodeToString(rk.Seal(k, []byte(v)))
		}
		ev.Events[i] = out
	}
	return ev, nil
}

// tokenKey is the blind-index key of a series; see pii.Keyring.TokenKey.
func (g *Gateway) tokenKey(ctx context.Context, r *request, series []byte, create bool) (*pii.TokenKey, error) {
	k, err := g.keyringFor(r.ns.Name)
	if err != nil {
		return nil, err
	}
	tk, err := k.TokenKey(ctx, r.ns.Name, series, create)
	if err != nil && !errors.Is(err, pii.ErrForgotten) {
		return nil, keyError(err, r.ns.Name)
	}
	return tk, err
}

// searchTokens returns req with the values of its PII tags replaced by
// their tokens, or nil when no stored event can match (the series has no
// secret: nothing PII was written to it, or it was forgotten). Searching
// by a PII tag needs read_pii (else the search would tell whether a
// guessed value is there) and one series (tokens are per series).
func (g *Gateway) searchTokens(ctx context.Context, r *request, req *prismv1.SearchRequest) (*prismv1.SearchRequest, error) {
	var piiTags []string
	for k := range req.GetTags() {
		if _, ok := piiTag(r, k); ok {
			piiTags = append(piiTags, k)
		}
	}
	if len(piiTags) == 0 {
		return req, nil
	}
	if !g.mayReadPII(r) {
		return nil, status.Newf(prismv1.Code_PERMISSION_DENIED, "search by tag %s of namespace %s: it is a PII field, and searching by it needs read_pii", strings.Join(piiTags, ", "), r.ns.Name)
	}
	if len(req.GetSeriesId()) == 0 {
		return nil, status.Invalidf("search by tag %s: it is a PII field of namespace %s, stored as a per-series token: give series_id", strings.Join(piiTags, ", "), r.ns.Name)
	}
	tk, err := g.tokenKey(ctx, r, req.GetSeriesId(), false)
	if errors.Is(err, pii.ErrForgotten) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &prismv1.SearchRequest{SeriesId: req.GetSeriesId(), Range: req.GetRange(), Descending: req.GetDescending(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), MinSeq: req.GetMinSeq(), Tags: make(map[string]string, len(req.GetTags()))}
	for k, v := range req.GetTags() {
		if _, ok := piiTag(r, k); ok {
			v = tk.Token(k, []byte(v))
		}
		out.Tags[k] = v
	}
	return out, nil
}

// revealPage returns resp with each event's PII shown as the caller may
// see it (revealEvents); resp is not changed.
func (g *Gateway) revealPage(ctx context.Context, r *request, resp *prismv1.EventsResponse) (*prismv1.EventsResponse, error) {
	if !r.hasPII() {
		return resp, nil
	}
	out := &prismv1.EventsResponse{NextPageToken: resp.GetNextPageToken(), Events: make([]*prismv1.SeriesEvent, len(resp.GetEvents()))}
	keys := map[string]map[pii.Header]*pii.RecordKey{}
	v := g.piiView(r, nil)
	for i, se := range resp.GetEvents() {
		series := se.GetSeriesId()
		if keys[string(series)] == nil {
			keys[string(series)] = map[pii.Header]*pii.RecordKey{}
		}
		ev, err := g.revealEvent(ctx, r, series, se.GetEvent(), keys[string(series)], v)
		if err != nil {
			return nil, err
		}
		out.Events[i] = &prismv1.SeriesEvent{SeriesId: series, Event: ev}
	}
	return out, nil
}

// revealEvents is revealEvent for the events of one series.
func (g *Gateway) revealEvents(ctx context.Context, r *request, series []byte, evs []*prismv1.TimeSeriesEvent, undecryptable func(string)) ([]*prismv1.TimeSeriesEvent, error) {
	out := make([]*prismv1.TimeSeriesEvent, len(evs))
	keys := map[pii.Header]*pii.RecordKey{}
	v := g.piiView(r, undecryptable)
	for i, ev := range evs {
		var err error
		if out[i], err = g.revealEvent(ctx, r, series, ev, keys, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// revealEvent returns ev, an event of series, as the caller of r may see
// it: PII tags and payload opened for a caller with read_pii, else masked
// or left out; a forgotten series' left out; the sealed-value tags taken
// out. A value that does not open is an INTERNAL error, or, with
// view.undecryptable, left out after it is told the field.
func (g *Gateway) revealEvent(ctx context.Context, r *request, series []byte, ev *prismv1.TimeSeriesEvent, keys map[pii.Header]*pii.RecordKey, view piiView) (*prismv1.TimeSeriesEvent, error) {
	plain, omit, undecryptable := view.plain, view.omit, view.undecryptable
	// show returns what the caller sees of field's value: ok false to
	// leave it out.
	show := func(field string, kind pii.Kind, value []byte) ([]byte, bool, error) {
		if omit {
			return nil, false, nil
		}
		v, err := g.openValue(ctx, r, series, field, value, keys)
		var se *status.Error
		switch {
		case errors.Is(err, pii.ErrForgotten):
			return nil, false, nil
		case undecryptable != nil && errors.As(err, &se) && se.Code == prismv1.Code_INTERNAL:
			undecryptable(field)
			return nil, false, nil
		case err != nil:
			return nil, false, err
		case !plain:
			v = []byte(pii.Mask(kind, string(v)))
		}
		return v, true, nil
	}
	out := &prismv1.TimeSeriesEvent{EventTime: ev.GetEventTime(), EventId: ev.GetEventId(), Payload: ev.GetPayload()}
	if kind, ok := r.ns.PII.Kind(namespaces.PIIPayload); ok && len(ev.GetPayload()) > 0 {
		v, shown, err := show(namespaces.PIIPayload, kind, ev.GetPayload())
		if err != nil {
			return nil, err
		}
		out.Payload = nil
		if shown {
			out.Payload = v
		}
	}
	tags := ev.GetTags()
	if len(tags) > 0 {
		out.Tags = make(map[string]string, len(tags))
	}
	for k, v := range tags {
		if strings.HasPrefix(k, sealedTagPrefix) {
			continue
		}
		kind, ok := piiTag(r, k)
		if !ok {
			out.Tags[k] = v
			continue
		}
		value := []byte(v) // written before the tag was PII: as stored
		if sealed, ok := tags[sealedTagPrefix+k]; ok {
			b, err := base64.RawURLEncoding.DecodeString(sealed)
			if err != nil {
				return nil, &status.Error{Code: prismv1.Code_INTERNAL, Message: fmt.Sprintf("the sealed tag %s of series %q in namespace %s is not base64url: it was changed", k, series, r.ns.Name), Err: err}
			}
			value = b
		} else if pii.IsToken(v) {
			continue // a token without its value: nothing to show
		}
		shownV, shown, err := show(k, kind, value)
		if err != nil {
			return nil, err
		}
		if shown {
			out.Tags[k] = string(shownV)
		}
	}
	return out, nil
}

// piiView is how one caller sees PII, decided once per page or change
// rather than per value.
type piiView struct {
	plain, omit   bool
	undecryptable func(field string)
}

func (g *Gateway) piiView(r *request, undecryptable func(string)) piiView {
	plain := g.mayReadPII(r)
	return piiView{plain: plain, omit: !plain && r.ns.PIIRedaction == namespaces.RedactOmit, undecryptable: undecryptable}
}
