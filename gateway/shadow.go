package gateway

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Shadow reads. While a namespace migrates, a sampled fraction of its
// keyvalue gets is read again from the other target, off the request path,
// and the two answers compared. The targets project the same stream at
// their own pace, so a comparison is only evidence when both answers
// describe the record at the same point of the stream: a record's
// revision is the stream sequence of its last event, so if the shadow's
// revision is at or below the sequence the primary had applied when the
// get began, no event touched the record between the two reads and the
// answers must be equal. Otherwise the record changed in between and the
// sample is skipped. Mismatches are counted and logged with the record id,
// never with values (they may be personal data).

// shadowTarget is the target sampled gets are compared against.
type shadowTarget struct {
	ReadTarget
	sample float64
}

// Bounds of shadow comparisons: how many run at once (more samples are
// dropped and counted) and how long one may wait for the shadow to reach
// the primary's checkpoint and read.
const (
	maxShadowReads    = 16
	shadowReadTimeout = 2 * time.Second
)

// Shadow comparison results, the metric's result label.
const (
	shadowMatch    = "match"
	shadowMismatch = "mismatch"
	shadowSkipped  = "skipped"
	shadowDropped  = "dropped"
	shadowError    = "error"
)

// sampleShadow compares, off the request path, the primary's answer resp
// to req (read once the primary's checkpoint was before) with the
// shadow's, if the namespace has a shadow and the sample falls on this
// get. Paged gets are not compared: page tokens belong to a backend. It
// costs a get without a shadow one nil check.
func (g *Gateway) sampleShadow(ns *namespaceEntry, req *prismv1.GetRequest, resp *prismv1.GetResponse, before uint64) {
	sh := ns.shadow
	if sh == nil || sh.sample <= 0 || req.GetPageToken() != "" || rand.Float64() >= sh.sample {
		return
	}
	// The primary's checkpoint now bounds the state its read saw.
	after := ns.applied.Applied()
	select {
	case g.shadowSem <- struct{}{}:
	default:
		g.countShadow(ns.Name, shadowDropped)
		return
	}
	// Workers are counted in inflight while this runs, so Drain waits for
	// the comparison too.
	g.inflight.Add(1)
	go func() {
		defer func() {
			<-g.shadowSem
			g.inflight.Done()
		}()
		ctx, cancel := context.WithTimeout(g.baseContext(), shadowReadTimeout)
		defer cancel()
		result := g.compareShadow(ctx, ns, sh, req, resp, before, after)
		g.countShadow(ns.Name, result)
	}()
}

// shadowResults are the results a shadow comparison has, in the order
// ShadowReads reports them.
var shadowResults = []string{shadowMatch, shadowMismatch, shadowSkipped, shadowDropped, shadowError}

// shadowCounters counts one namespace's shadow comparisons by result, in
// the order of shadowResults.
type shadowCounters [5]atomic.Int64

// countShadow records a shadow comparison of namespace ns.
func (g *Gateway) countShadow(ns, result string) {
	g.metrics.observeShadow(ns, result)
	v, _ := g.shadowCounts.LoadOrStore(ns, new(shadowCounters))
	c := v.(*shadowCounters)
	c[slices.Index(shadowResults, result)].Add(1)
}

// ShadowReads returns how many sampled gets of namespace ns this gateway
// compared against a shadow target, by result (match, mismatch, skipped,
// dropped, error), since it started; nil when none was sampled. The same
// counts are in prism_gateway_shadow_reads_total.
func (g *Gateway) ShadowReads(ns string) map[string]int64 {
	v, ok := g.shadowCounts.Load(ns)
	if !ok {
		return nil
	}
	c := v.(*shadowCounters)
	out := make(map[string]int64, len(shadowResults))
	for i, r := range shadowResults {
		out[r] = c[i].Load()
	}
	return out
}

// compareShadow reads req from sh once it applied what the primary had
// when it answered resp, and says how the answers compare.
func (g *Gateway) compareShadow(ctx context.Context, ns *namespaceEntry, sh *shadowTarget, req *prismv1.GetRequest, resp *prismv1.GetResponse, before, after uint64) string {
	if err := sh.Applied.WaitApplied(ctx, after); err != nil {
		return shadowSkipped
	}
	got, err := sh.KeyValue.GetItems(ctx, req)
	if err != nil {
		g.log.Warn("shadow read failed", "namespace", ns.Name, "shadow", sh.Name, "id", printableID(req.GetId()), "err", err)
		return shadowError
	}
	switch {
	case got.GetRevision() == 0 && resp.GetRevision() == 0:
		return shadowMatch
	case got.GetRevision() == 0:
		// The shadow has no record the primary had: deleted meanwhile, or
		// missing from the shadow. Ask the primary again once it applied
		// what the shadow had: still there at the same revision means the
		// record was never deleted, so the shadow lost it.
		shadowAt := sh.Applied.Applied()
		if err := ns.applied.WaitApplied(ctx, shadowAt); err != nil {
			return shadowSkipped
		}
		again, err := ns.reader.GetItems(ctx, req)
		if err != nil || again.GetRevision() != resp.GetRevision() {
			return shadowSkipped
		}
	case got.GetRevision() > before:
		// Changed after the primary's read began: the two answers may
		// describe different moments.
		return shadowSkipped
	case got.GetRevision() == resp.GetRevision() && itemsEqual(live(got.GetItems(), g.opts.clock()), live(resp.GetItems(), g.opts.clock())) && (got.GetNextPageToken() == "") == (resp.GetNextPageToken() == ""):
		// Unchanged since before: the primary read the same state. Items
		// that expired between the two reads are left out of both.
		return shadowMatch
	}
	g.log.Warn("shadow read mismatch", "namespace", ns.Name, "id", printableID(req.GetId()),
		"primary", ns.target, "primary_revision", resp.GetRevision(), "primary_items", len(resp.GetItems()),
		"shadow", sh.Name, "shadow_revision", got.GetRevision(), "shadow_items", len(got.GetItems()))
	return shadowMismatch
}

// live returns the items of items not expired at now.
func live(items []*prismv1.Item, now time.Time) []*prismv1.Item {
	out := items[:0:0]
	for _, it := range items {
		if t := it.GetExpireTime(); t == nil || t.AsTime().After(now) {
			out = append(out, it)
		}
	}
	return out
}

func itemsEqual(a, b []*prismv1.Item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// printableID is a record id as logs show it: as is when it is printable
// ASCII, else hex-quoted by %q.
func printableID(id []byte) string {
	for _, c := range id {
		if c < 0x20 || c > 0x7e {
			return string(quoteHex(id))
		}
	}
	return string(id)
}

func quoteHex(id []byte) []byte {
	const digits = "0123456789abcdef"
	out := append(make([]byte, 0, 2+2*len(id)), "0x"...)
	for _, c := range id {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}
