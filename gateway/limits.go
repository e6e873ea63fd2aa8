package gateway

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Admission (ADR 023). Every request is admitted or shed at once, before
// it takes a worker: the gateway never queues a request it cannot start.
// In order, a request is shed when
//
//   - its namespace's rate limit (writes or reads per second, derived from
//     needs by namespaces.DeriveLimits) has no token left;
//   - its namespace already runs its in-flight quota;
//   - the process is more than half busy and its namespace runs its fair
//     share of the process's slots: capacity / (busy namespaces + 1), the
//     one extra share being kept for a namespace not yet busy (with one
//     namespace registered, the whole capacity);
//   - the process runs its in-flight cap (WithMaxInFlight) or its
//     in-flight bytes (WithMaxInFlightBytes);
//
// and, before all of these, when the caller's share of the namespace's
// limits (limits.principal_share) is used up. A shed request gets
// RESOURCE_EXHAUSTED with a retry-after hint; nothing was done.

// Reasons a request is shed: the reason label of
// prism_gateway_shed_total and the keys of Gateway.Shed.
const (
	ShedWriteRate         = "write_rate"
	ShedReadRate          = "read_rate"
	ShedNamespaceInFlight = "namespace_in_flight"
	ShedFairShare         = "fair_share"
	ShedProcessInFlight   = "process_in_flight"
	ShedProcessBytes      = "process_bytes"
	ShedPrincipalRate     = "principal_rate"
	ShedPrincipalInFlight = "principal_in_flight"
)

// shedReasons lists the reasons, in the order of shedCounters.
var shedReasons = [...]string{ShedWriteRate, ShedReadRate, ShedNamespaceInFlight, ShedFairShare, ShedProcessInFlight, ShedProcessBytes, ShedPrincipalRate, ShedPrincipalInFlight}

// busyRetryAfter is the hint of a request shed for an in-flight bound: about
// the time a request takes on a loaded process.
const busyRetryAfter = 20 * time.Millisecond

// RequestOverheadBytes is an estimate of what one request in flight holds
// besides its body: its worker's stack, the decoded message, the event and
// the reply (docs/operations.md, "Memory bound").
const RequestOverheadBytes = 64 << 10

// maxPrincipals bounds the principals whose usage a namespace tracks; idle
// ones are forgotten first, and beyond it callers share one allowance.
const maxPrincipals = 4096

// admission holds the process-wide counts.
type admission struct {
	capacity  int64 // maxInFlight
	maxBytes  int64 // maxInFlightBytes
	inFlight  atomic.Int64
	bytes     atomic.Int64
	peakBytes atomic.Int64
	busy      atomic.Int64 // namespaces with a request in flight
}

// limiter is the admission state of one namespace. It outlives updates of
// the namespace's entry (UpdateNamespace keeps it and changes its limits).
type limiter struct {
	name       string
	write      *rate.Limiter // rate.Inf: no limit
	read       *rate.Limiter
	quota      atomic.Int64 // 0: none
	share      atomic.Int64 // percent for one principal
	inFlight   atomic.Int64
	shed       [len(shedReasons)]atomic.Int64
	mu         sync.Mutex // guards limits and principals
	limits     namespaces.AdmissionLimits
	principals map[string]*principalUse
}

// principalUse is one caller's usage of a namespace.
type principalUse struct {
	write, read *rate.Limiter
	inFlight    atomic.Int64
	lastUsed    atomic.Int64 // unix nanoseconds
}

func newLimiter(ns namespaces.Namespace) *limiter {
	l := &limiter{
		name:  ns.Name,
		write: rate.NewLimiter(rate.Inf, 1),
		read:  rate.NewLimiter(rate.Inf, 1),
	}
	l.set(ns)
	return l
}

// set applies the limits derived from ns, keeping the counts.
func (l *limiter) set(ns namespaces.Namespace) {
	lim := namespaces.DeriveLimits(ns)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = lim
	setRate(l.write, lim.WriteRate.Value, 100)
	setRate(l.read, lim.ReadRate.Value, 100)
	l.quota.Store(int64(lim.InFlight.Value))
	l.share.Store(int64(lim.PrincipalShare.Value))
	// Principals start over with the new limits.
	l.principals = nil
}

// setRate sets lim to percent of perSecond (0: unlimited), with
// LimitBurst of burst.
func setRate(lim *rate.Limiter, perSecond, percent int) {
	if perSecond <= 0 {
		lim.SetLimit(rate.Inf)
		return
	}
	r := float64(perSecond) * float64(percent) / 100
	lim.SetLimit(rate.Limit(r))
	lim.SetBurst(max(1, int(math.Ceil(r*namespaces.LimitBurst.Seconds()))))
}

// ticket is an admitted request's hold on its slots; release gives them
// back.
type ticket struct {
	lim   *limiter // nil: the namespace is not registered here
	bytes int64
	pu    *principalUse
}

// shedError is the RESOURCE_EXHAUSTED reply of a request shed for reason.
func shedError(ns, reason string, after time.Duration) *status.Error {
	var what string
	switch reason {
	case ShedWriteRate, ShedReadRate:
		what = fmt.Sprintf("namespace %s is above its %s limit (2× its declared needs; prism plan shows it)", ns, reason)
	case ShedNamespaceInFlight:
		what = fmt.Sprintf("namespace %s runs its in-flight quota", ns)
	case ShedFairShare:
		what = fmt.Sprintf("the gateway is busy and namespace %s runs its fair share of it", ns)
	case ShedProcessInFlight, ShedProcessBytes:
		what = "the gateway runs as many requests as it is configured for"
	case ShedPrincipalRate, ShedPrincipalInFlight:
		what = fmt.Sprintf("the caller uses its share of namespace %s's limits (limits.principal_share)", ns)
	}
	return &status.Error{Code: prismv1.Code_RESOURCE_EXHAUSTED, Message: what + "; nothing was done: retry after the Prism-Retry-After milliseconds", RetryAfter: after}
}

// admitMsg decides at once whether msg may start. It returns the ticket of
// an admitted request, or the reason and retry-after hint of a shed one
// (whose ticket holds nothing but names the namespace in lim).
func (g *Gateway) admitMsg(msg *nats.Msg) (ticket, string, time.Duration) {
	a := &g.adm
	size := int64(len(msg.Data))
	var lim *limiter
	kind := ""
	if parsed, err := subjects.ParseRequest(msg.Subject); err == nil {
		kind = parsed.Kind
		if e, ok := g.namespaces.get(parsed.Namespace); ok {
			lim = e.lim
		}
	}
	t := ticket{lim: lim}
	// shed gives back what t holds so far.
	shed := func(reason string, wait time.Duration) (ticket, string, time.Duration) {
		if t.pu != nil {
			t.pu.inFlight.Add(-1)
		}
		return ticket{lim: lim}, reason, wait
	}
	if lim != nil {
		now := g.opts.clock()
		if reason, wait := g.admitPrincipal(&t, msg.Header, kind, now); reason != "" {
			return shed(reason, wait)
		}
		switch kind {
		case subjects.KindWrite:
			if !lim.write.AllowN(now, 1) {
				return shed(ShedWriteRate, tokenWait(lim.write, now))
			}
		case subjects.KindRead:
			if !lim.read.AllowN(now, 1) {
				return shed(ShedReadRate, tokenWait(lim.read, now))
			}
		}
		quota := int64(math.MaxInt64) // no quota: the process cap decides
		if q := lim.quota.Load(); q > 0 {
			quota = min(q, a.capacity)
		}
		n, ok := acquire(&lim.inFlight, 1, quota, false)
		if !ok {
			return shed(ShedNamespaceInFlight, busyRetryAfter)
		}
		if n == 1 {
			a.busy.Add(1)
		}
		if share := a.fairShare(g.namespaces.n.Load()); share < a.capacity && a.inFlight.Load() >= a.capacity/2 && n > share {
			g.releaseNS(lim)
			return shed(ShedFairShare, busyRetryAfter)
		}
	}
	if _, ok := acquire(&a.inFlight, 1, a.capacity, false); !ok {
		g.releaseNS(lim)
		return shed(ShedProcessInFlight, busyRetryAfter)
	}
	// A body larger than the whole budget still runs when it is alone, so
	// that a low WithMaxInFlightBytes cannot refuse a request forever.
	b, ok := acquire(&a.bytes, size, a.maxBytes, true)
	if !ok {
		a.inFlight.Add(-1)
		g.releaseNS(lim)
		return shed(ShedProcessBytes, busyRetryAfter)
	}
	for p := a.peakBytes.Load(); b > p && !a.peakBytes.CompareAndSwap(p, b); p = a.peakBytes.Load() {
	}
	t.bytes = size
	return t, "", 0
}

// acquire adds n to c unless that takes it above limit, and returns the
// new count. It never lets c pass limit, not even for a moment, so that
// what Load samples is what was admitted. With alone, n is added to a zero
// count whatever its size.
func acquire(c *atomic.Int64, n, limit int64, alone bool) (int64, bool) {
	for {
		cur := c.Load()
		if cur+n > limit && !(alone && cur == 0) {
			return cur, false
		}
		if c.CompareAndSwap(cur, cur+n) {
			return cur + n, true
		}
	}
}

// fairShare is the in-flight share of one busy namespace.
func (a *admission) fairShare(registered int64) int64 {
	n := a.busy.Load()
	if n < registered {
		n++ // keep a share for a namespace not busy yet
	}
	return max(1, a.capacity/max(1, n))
}

// releaseNS gives back lim's in-flight slot.
func (g *Gateway) releaseNS(lim *limiter) {
	if lim != nil && lim.inFlight.Add(-1) == 0 {
		g.adm.busy.Add(-1)
	}
}

// release gives back the slots of an admitted request.
func (g *Gateway) release(t ticket) {
	if t.pu != nil {
		t.pu.inFlight.Add(-1)
	}
	g.adm.bytes.Add(-t.bytes)
	g.adm.inFlight.Add(-1)
	g.releaseNS(t.lim)
}

// tokenWait is how long until lim has a token again.
func tokenWait(lim *rate.Limiter, now time.Time) time.Duration {
	r := float64(lim.Limit())
	if r <= 0 || math.IsInf(r, 1) {
		return busyRetryAfter
	}
	missing := 1 - lim.TokensAt(now)
	return max(time.Millisecond, time.Duration(missing/r*float64(time.Second)))
}

// admitPrincipal checks the caller's share of t.lim's limits, when the
// namespace has a principal_share below 100, and records the caller's hold
// in t. It returns the reason and hint when the caller is at its share. A
// request whose caller cannot be identified passes: serve refuses it, and
// audits that.
func (g *Gateway) admitPrincipal(t *ticket, h nats.Header, kind string, now time.Time) (string, time.Duration) {
	l := t.lim
	if l.share.Load() >= 100 {
		return "", 0
	}
	p := auth.Anonymous
	if sec := g.opts.security; sec != nil {
		var err error
		if p, err = sec.Identify(h); err != nil {
			return "", 0
		}
	}
	pu := l.principal(p.Name)
	pu.lastUsed.Store(time.Now().UnixNano())
	switch {
	case kind == subjects.KindWrite && !pu.write.AllowN(now, 1):
		return ShedPrincipalRate, tokenWait(pu.write, now)
	case kind == subjects.KindRead && !pu.read.AllowN(now, 1):
		return ShedPrincipalRate, tokenWait(pu.read, now)
	}
	q := l.quota.Load()
	if q == 0 {
		q = g.adm.capacity
	}
	if pu.inFlight.Add(1) > max(1, q*l.share.Load()/100) {
		pu.inFlight.Add(-1)
		return ShedPrincipalInFlight, busyRetryAfter
	}
	t.pu = pu
	return "", 0
}

// principal returns the usage of principal name, made on first use.
func (l *limiter) principal(name string) *principalUse {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pu, ok := l.principals[name]; ok {
		return pu
	}
	if l.principals == nil {
		l.principals = make(map[string]*principalUse)
	}
	if len(l.principals) >= maxPrincipals {
		l.forgetIdle()
		if len(l.principals) >= maxPrincipals {
			name = "" // beyond the bound, the newcomers share one allowance
			if pu, ok := l.principals[name]; ok {
				return pu
			}
		}
	}
	share := int(l.share.Load())
	pu := &principalUse{write: rate.NewLimiter(rate.Inf, 1), read: rate.NewLimiter(rate.Inf, 1)}
	setRate(pu.write, l.limits.WriteRate.Value, share)
	setRate(pu.read, l.limits.ReadRate.Value, share)
	l.principals[name] = pu
	return pu
}

// forgetIdle drops the principals with nothing in flight and unused for a
// minute. l.mu is held.
func (l *limiter) forgetIdle() {
	cutoff := time.Now().Add(-time.Minute).UnixNano()
	for name, pu := range l.principals {
		if pu.inFlight.Load() == 0 && pu.lastUsed.Load() < cutoff {
			delete(l.principals, name)
		}
	}
}

// countShed counts a request of l (nil: no registered namespace) shed for
// reason.
func (g *Gateway) countShed(l *limiter, reason string) {
	ns := "unknown"
	if l != nil {
		ns = l.name
		for i, r := range shedReasons {
			if r == reason {
				l.shed[i].Add(1)
			}
		}
	}
	g.metrics.observeShed(ns, reason)
}

// job is an admitted request on its way to a worker.
type job struct {
	msg *nats.Msg
	t   ticket
}

// shed answers msg, which admission refused for reason, with
// RESOURCE_EXHAUSTED and the hint after, from the subscription's callback:
// it costs no worker, and nothing of the request was done.
func (g *Gateway) shed(msg *nats.Msg, lim *limiter, reason string, after time.Duration) {
	g.countShed(lim, reason)
	ns, op := "unknown", "unknown"
	if lim != nil {
		ns = lim.name
	}
	if parsed, err := subjects.ParseRequest(msg.Subject); err == nil && lim != nil {
		op = parsed.Kind + "." + parsed.Op
	}
	code := prismv1.Code_RESOURCE_EXHAUSTED.String()
	g.metrics.observe(ns, op, code, 0)
	if msg.Reply == "" {
		return
	}
	e := shedError(ns, reason, after)
	enc, _ := requestEncoding(msg.Header) // JSON when unreadable
	reply := nats.NewMsg(msg.Reply)
	reply.Header.Set(subjects.HeaderContentTypeReq, enc.contentType())
	if id := msg.Header.Get(HeaderRequestID); validRequestID(id) {
		reply.Header.Set(HeaderRequestID, id)
	}
	reply.Header.Set(subjects.HeaderErrorCode, code)
	reply.Header.Set(subjects.HeaderRetryAfter, strconv.FormatUint(uint64(e.RetryAfterMillis()), 10))
	data, err := enc.marshal(e.Proto())
	if err != nil { // cannot happen with well-formed proto messages
		return
	}
	reply.Data = data
	if err := msg.RespondMsg(reply); err != nil {
		g.log.Debug("reply to a shed request", "namespace", ns, "err", err)
	}
}

// Shed returns how many requests of namespace ns this gateway shed, by
// reason (the Shed* constants), since ns was registered; nil when ns is
// not registered. The same counts are in prism_gateway_shed_total.
func (g *Gateway) Shed(ns string) map[string]int64 {
	e, ok := g.namespaces.get(ns)
	if !ok {
		return nil
	}
	out := make(map[string]int64, len(shedReasons))
	for i, r := range shedReasons {
		out[r] = e.lim.shed[i].Load()
	}
	return out
}

// Load is the gateway's admission state at one moment.
type Load struct {
	// InFlight is the requests admitted and not yet answered.
	InFlight int64
	// InFlightBytes is the size of their bodies, and PeakInFlightBytes the
	// most it has been since the gateway was made.
	InFlightBytes, PeakInFlightBytes int64
	// Capacity and MaxBytes are the configured bounds (WithMaxInFlight,
	// WithMaxInFlightBytes).
	Capacity, MaxBytes int64
	// PendingMsgs and PendingBytes are what the subscriptions buffer
	// before admission, summed; each is bounded by WithPendingLimits.
	PendingMsgs, PendingBytes int64
}

// Load returns the gateway's admission state.
func (g *Gateway) Load() Load {
	a := &g.adm
	l := Load{InFlight: a.inFlight.Load(), InFlightBytes: a.bytes.Load(), PeakInFlightBytes: a.peakBytes.Load(), Capacity: a.capacity, MaxBytes: a.maxBytes}
	g.runMu.Lock()
	subs := g.subs
	g.runMu.Unlock()
	for _, s := range subs {
		if msgs, bytes, err := s.Pending(); err == nil {
			l.PendingMsgs += int64(msgs)
			l.PendingBytes += int64(bytes)
		}
	}
	return l
}

// Limits returns the admission limits namespace ns is served with, as
// derived from its declaration (namespaces.DeriveLimits); ok is false when
// ns is not registered.
func (g *Gateway) Limits(ns string) (namespaces.AdmissionLimits, bool) {
	e, ok := g.namespaces.get(ns)
	if !ok {
		return namespaces.AdmissionLimits{}, false
	}
	e.lim.mu.Lock()
	defer e.lim.mu.Unlock()
	return e.lim.limits, true
}
