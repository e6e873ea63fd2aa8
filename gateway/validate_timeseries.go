package gateway

import (
	"encoding/base64"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Limits of TimeSeries requests. A request that breaks one gets
// INVALID_ARGUMENT and nothing is written. Besides these, the event of one
// append (its marshalled prismv1.TimeSeriesAppend) is at most namespaces.MaxEventBytes,
// page_size at most MaxPageSize, page_token at most MaxPageTokenLen and
// idempotency_token as for KeyValue.
const (
	// MaxSeriesIDBytes is the longest series id; series ids must not be
	// empty.
	MaxSeriesIDBytes = 1024
	// MaxAppendEvents is the most events one append may write.
	MaxAppendEvents = 1000
	// MaxEventIDBytes is the longest event id; event ids must not be empty.
	// Projectors refuse longer ones too.
	MaxEventIDBytes = subjects.MaxEventIDLen
	// MaxTags is the most tags one event may carry, and one search may name.
	MaxTags = 64
	// MaxTagKeyBytes is the longest tag key; tag keys must not be empty.
	MaxTagKeyBytes = 128
	// MaxTagValueBytes is the longest tag value. An empty value is allowed.
	MaxTagValueBytes = 1024
	// MaxPayloadBytes is the largest event payload (512 KiB).
	MaxPayloadBytes = 512 << 10
)

func validateSeriesID(what string, id []byte) error {
	if len(id) == 0 {
		return status.Invalidf("%s is empty; every series needs an id of 1 to %d bytes", what, MaxSeriesIDBytes)
	}
	if len(id) > MaxSeriesIDBytes {
		return status.Invalidf("%s is %d bytes; the limit is %d", what, len(id), MaxSeriesIDBytes)
	}
	return nil
}

func validateTimestamp(what string, ts *timestamppb.Timestamp) error {
	if err := ts.CheckValid(); err != nil {
		return status.Invalidf("%s is not a valid time (years 0001 to 9999, nanos below 1e9): %v", what, err)
	}
	return nil
}

// validateTags checks the tags of an event or a search; prefix names the
// event ("event 3: ").
func validateTags(prefix string, tags map[string]string) error {
	if len(tags) > MaxTags {
		return status.Invalidf("%s%d tags; the limit is %d", prefix, len(tags), MaxTags)
	}
	for k, v := range tags {
		if len(k) == 0 {
			return status.Invalidf("%sa tag has an empty key; tag keys are 1 to %d bytes", prefix, MaxTagKeyBytes)
		}
		if strings.HasPrefix(k, sealedTagPrefix) {
			return status.Invalidf("%stag key %.32q: the prefix %s is Prism's (it holds sealed PII values)", prefix, k, sealedTagPrefix)
		}
		if len(k) > MaxTagKeyBytes {
			return status.Invalidf("%stag key %.32q… is %d bytes; the limit is %d", prefix, k, len(k), MaxTagKeyBytes)
		}
		if len(v) > MaxTagValueBytes {
			return status.Invalidf("%svalue of tag %q is %d bytes; the limit is %d", prefix, k, len(v), MaxTagValueBytes)
		}
	}
	return nil
}

func validateTimeRange(rg *prismv1.TimeRange) error {
	if rg == nil {
		return nil
	}
	if rg.GetStart() != nil {
		if err := validateTimestamp("range start", rg.GetStart()); err != nil {
			return err
		}
	}
	if rg.GetEnd() != nil {
		if err := validateTimestamp("range end", rg.GetEnd()); err != nil {
			return err
		}
	}
	if rg.GetStart() != nil && rg.GetEnd() != nil && !rg.GetStart().AsTime().Before(rg.GetEnd().AsTime()) {
		return status.Invalidf("range start %s is not before end %s; the range is [start, end), and an unset end is unbounded",
			rg.GetStart().AsTime().Format("2006-01-02T15:04:05.999999999Z07:00"), rg.GetEnd().AsTime().Format("2006-01-02T15:04:05.999999999Z07:00"))
	}
	return nil
}

// validateEventsPageToken checks the form of a page token of range and
// search: the unpadded base64url of what the backend needs to resume.
func validateEventsPageToken(token string) error {
	if token == "" {
		return nil
	}
	if len(token) > MaxPageTokenLen {
		return status.Invalidf("page_token is %d characters; the limit is %d: pass next_page_token of the previous page unchanged", len(token), MaxPageTokenLen)
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil || len(b) == 0 {
		return status.Invalidf("page_token %q is not a token this gateway issued: pass next_page_token of the previous page unchanged", token)
	}
	return nil
}

func validateAppendRequest(req *prismv1.AppendRequest) error {
	if err := validateSeriesID("series_id", req.GetSeriesId()); err != nil {
		return err
	}
	events := req.GetEvents()
	if len(events) == 0 {
		return status.Invalidf("append to series %q has no events; append 1 to %d", req.GetSeriesId(), MaxAppendEvents)
	}
	if len(events) > MaxAppendEvents {
		return status.Invalidf("append to series %q has %d events; the limit is %d", req.GetSeriesId(), len(events), MaxAppendEvents)
	}
	for i, ev := range events {
		prefix := fmt.Sprintf("event %d: ", i+1)
		if ev.GetEventTime() == nil {
			return status.Invalidf("%sevent_time is not set; every event needs the time it happened", prefix)
		}
		if err := validateTimestamp(prefix+"event_time", ev.GetEventTime()); err != nil {
			return err
		}
		if id := ev.GetEventId(); len(id) == 0 {
			return status.Invalidf("%sevent_id is empty; every event needs an id of 1 to %d bytes, unique within its series and time", prefix, MaxEventIDBytes)
		} else if len(id) > MaxEventIDBytes {
			return status.Invalidf("%sevent_id is %d bytes; the limit is %d", prefix, len(id), MaxEventIDBytes)
		}
		if err := validateTags(prefix, ev.GetTags()); err != nil {
			return err
		}
		if n := len(ev.GetPayload()); n > MaxPayloadBytes {
			return status.Invalidf("%spayload is %d bytes; the limit is %d", prefix, n, MaxPayloadBytes)
		}
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateReadRangeRequest(req *prismv1.ReadRangeRequest) error {
	if err := validateSeriesID("series_id", req.GetSeriesId()); err != nil {
		return err
	}
	if err := validateTimeRange(req.GetRange()); err != nil {
		return err
	}
	if err := validatePageSize(req.GetPageSize()); err != nil {
		return err
	}
	return validateEventsPageToken(req.GetPageToken())
}

func validateSearchRequest(req *prismv1.SearchRequest) error {
	// An empty series_id searches every series; empty tags match every event.
	if id := req.GetSeriesId(); len(id) > 0 {
		if err := validateSeriesID("series_id", id); err != nil {
			return err
		}
	}
	if err := validateTags("search: ", req.GetTags()); err != nil {
		return err
	}
	if err := validateTimeRange(req.GetRange()); err != nil {
		return err
	}
	if err := validatePageSize(req.GetPageSize()); err != nil {
		return err
	}
	return validateEventsPageToken(req.GetPageToken())
}
