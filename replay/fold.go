package replay

import (
	"bytes"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// folded is the state of one record as a projector leaves it after every
// event of its subject, in stream order: its items, expired or not, with
// the number of messages folded and the last of them.
type folded struct {
	items map[string]*prismv1.Item
	n     int
	last  *jetstream.RawStreamMsg
	// tokenAt is when the newest of its events with an idempotency token
	// (Nats-Msg-Id) was stored; zero without one.
	tokenAt time.Time
}

func newFolded() *folded { return &folded{items: map[string]*prismv1.Item{}} }

// add applies the next message of the record subject the way the projector
// and every backend do (backends/backendtest states the contract). What
// the projector dead-letters changes nothing: a message
// subjects.DecodeKeyValueEvent refuses, and a change every backend refuses
// as invalid (an item with an invalid expire_time).
func (f *folded) add(m *jetstream.RawStreamMsg) {
	f.n++
	f.last = m
	if m.Header.Get(subjects.HeaderMsgID) != "" && m.Time.After(f.tokenAt) {
		f.tokenAt = m.Time
	}
	ev, err := subjects.DecodeKeyValueEvent(m.Subject, m.Header, m.Data)
	if err != nil || ev == nil || !applicable(ev) {
		return
	}
	switch ch := ev.GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		f.set(ch.Put.GetItems())
	case *prismv1.KeyValueEvent_Delete:
		if len(ch.Delete.GetKeys()) == 0 {
			clear(f.items)
			return
		}
		for _, k := range ch.Delete.GetKeys() {
			delete(f.items, string(k))
		}
	case *prismv1.KeyValueEvent_Replace:
		clear(f.items)
		f.set(ch.Replace.GetItems())
	}
}

// set puts items; a put replaces an item whole, its expiry included.
func (f *folded) set(items []*prismv1.Item) {
	for _, it := range items {
		f.items[string(it.GetKey())] = &prismv1.Item{Key: it.GetKey(), Value: it.GetValue(), ExpireTime: it.GetExpireTime(), Chunked: it.GetChunked()}
	}
}

// live returns the items that have not expired at now (the backends never
// return the others), in byte order of key, the order a replace carries
// them in.
func (f *folded) live(now time.Time) []*prismv1.Item {
	out := make([]*prismv1.Item, 0, len(f.items))
	for _, it := range f.items {
		if !expired(it, now) {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b *prismv1.Item) int { return bytes.Compare(a.GetKey(), b.GetKey()) })
	return out
}

// applicable reports whether every backend applies ev rather than refusing
// it as an invalid change (which the projector dead-letters). A decoded
// event has a change and no nil items; only an expire_time can be invalid.
func applicable(ev *prismv1.KeyValueEvent) bool {
	var items []*prismv1.Item
	switch ch := ev.GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		items = ch.Put.GetItems()
	case *prismv1.KeyValueEvent_Replace:
		items = ch.Replace.GetItems()
	}
	for _, it := range items {
		if et := it.GetExpireTime(); et != nil && et.CheckValid() != nil {
			return false
		}
	}
	return true
}

// expired reports whether it has expired at now: its expire_time is at or
// before now, as the backends decide.
func expired(it *prismv1.Item, now time.Time) bool {
	et := it.GetExpireTime()
	return et != nil && !et.AsTime().After(now)
}

// tombstone reports whether m is an event after which its record holds
// nothing live at now, whatever came before it: a whole-record delete, or a
// replace whose items are none or all expired. Such a message alone on its
// subject is all that is left of a deleted record.
func tombstone(m *jetstream.RawStreamMsg, now time.Time) bool {
	return emptyAfter(m, now, false)
}

// emptyAlone reports whether m, the only message of its subject, leaves
// its record with nothing live at now: a tombstone, or a put whose items
// have all expired (a record written once with a TTL).
func emptyAlone(m *jetstream.RawStreamMsg, now time.Time) bool {
	return emptyAfter(m, now, true)
}

// emptyAfter is tombstone, and with alone also a put of expired items.
func emptyAfter(m *jetstream.RawStreamMsg, now time.Time, alone bool) bool {
	ev, err := subjects.DecodeKeyValueEvent(m.Subject, m.Header, m.Data)
	if err != nil || ev == nil {
		return false
	}
	if del := ev.GetDelete(); del != nil {
		return len(del.GetKeys()) == 0
	}
	var items []*prismv1.Item
	switch {
	case ev.GetReplace() != nil:
		items = ev.GetReplace().GetItems()
	case alone && ev.GetPut() != nil:
		items = ev.GetPut().GetItems()
	default:
		return false
	}
	if !applicable(ev) {
		return false
	}
	for _, it := range items {
		if !expired(it, now) {
			return false
		}
	}
	return true
}
