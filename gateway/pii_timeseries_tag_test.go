package gateway_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// In a namespace whose pii names payload, that name means the event
// payload: a tag called payload is an ordinary tag, stored and searched
// as given, and the sealed payload cannot be opened as a tag.
func TestTimeSeriesTagNamedPayloadIsNotThePayload(t *testing.T) {
	ts, e := piiTSEnv(t, "")
	req := appendReq("s1", tsEvent(t0, "e1", map[string]string{"payload": "plain-tag", "email": tsEmail}, tsPayload))
	var w prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(tsNS, "append"), req, &w); er != nil {
		t.Fatal(er)
	}
	stored := natstest.Msg(t, ts.js, subjects.Stream(tsNS), w.GetSeq())
	app, err := subjects.DecodeTimeSeriesEvent(stored.Subject, stored.Header, stored.Data)
	if err != nil {
		t.Fatal(err)
	}
	ev := app.GetEvents()[0]
	if tags := ev.GetTags(); tags["payload"] != "plain-tag" || tags["~pii.payload"] != "" {
		t.Fatalf("stored tags %v: want the payload tag as given and no sealed copy", tags)
	}
	if _, err := pii.Inspect(ev.GetPayload()); err != nil {
		t.Fatalf("the payload is not sealed: %v", err)
	}

	// The sealed payload copied into the reserved tag of the same series
	// (someone who can publish on the stream) is not opened as the tag.
	forged := &prismv1.TimeSeriesAppend{SeriesId: []byte("s1"), Events: []*prismv1.TimeSeriesEvent{{
		EventTime: ev.GetEventTime(), EventId: []byte("f1"),
		Tags: map[string]string{"payload": "x", "~pii.payload": base64.RawURLEncoding.EncodeToString(ev.GetPayload())},
	}}}
	seq := publishForged(t, ts.js)(subjects.NewTimeSeriesEvent(subjects.EventMeta{Namespace: tsNS, Time: fixedNow}, forged))
	evs := readRangeAs(t, e, "support", seq)
	if len(evs) != 2 || evs[1].GetTags()["payload"] != "x" || evs[0].GetTags()["payload"] != "plain-tag" || string(evs[0].GetPayload()) != tsPayload {
		t.Fatalf("range as support = %v, want tag payload as stored and the payload opened", evs)
	}

	// Searched across series like any tag that is not PII.
	var found prismv1.EventsResponse
	if er := callAs(t, e, "reader", subjects.Read(tsNS, "search"), &prismv1.SearchRequest{Tags: map[string]string{"payload": "plain-tag"}, MinSeq: seq}, &found); er != nil {
		t.Fatalf("search by the tag payload: %v", er)
	}
	if len(found.GetEvents()) != 1 || string(found.GetEvents()[0].GetEvent().GetEventId()) != "e1" || string(found.GetEvents()[0].GetEvent().GetPayload()) != "***" {
		t.Fatalf("search by the tag payload = %v, want e1 with its payload masked", &found)
	}
}

// publishForged returns a function that publishes an event the subjects
// package built straight to the stream, as someone holding a PRISM
// credential could, and returns its seq.
func publishForged(t *testing.T, js jetstream.JetStream) func(*nats.Msg, error) uint64 {
	return func(msg *nats.Msg, err error) uint64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.PublishMsg(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
}
