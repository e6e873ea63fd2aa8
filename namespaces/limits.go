package namespaces

import (
	"fmt"
	"math"
	"time"
)

// Limits are the admission settings a namespace states beyond its needs
// (ADR 023). Every field is optional.
type Limits struct {
	// PrincipalShare is the percentage (1–100) of the namespace's rate
	// limits and in-flight quota that one principal (one caller identity)
	// may use, so that one client cannot take a shared namespace's whole
	// allowance. 0 means 100: a caller is bounded by the namespace's limits
	// only.
	PrincipalShare int `yaml:"principal_share,omitempty" json:"principal_share,omitempty"`
}

// The rules of DeriveLimits (ADR 023).
const (
	// LimitHeadroom multiplies the declared rates: a namespace is shed only
	// beyond twice what it declared, so a burst or a declared peak that was
	// a little low is served.
	LimitHeadroom = 2
	// LimitBurst is how many seconds of the rate limit a token bucket holds:
	// a namespace idle for a second may send that many requests at once.
	LimitBurst = time.Second
	// MinInFlightQuota is the smallest in-flight quota derived from needs,
	// so a low declared rate still allows a few concurrent callers.
	MinInFlightQuota = 16
	// InFlightLatencyFloor is the shortest request time the in-flight quota
	// is sized for: a p99 below it (or none stated) is sized as if it were
	// this, since a loaded process answers slower than an idle one.
	InFlightLatencyFloor = 100 * time.Millisecond
)

// AdmissionLimits is what the gateway admits of a namespace, each value
// with its reason. A zero value means no limit of that kind.
type AdmissionLimits struct {
	// WriteRate is the writes per second admitted (token bucket, LimitBurst
	// of burst); 0: no rate limit.
	WriteRate Derived[int]
	// ReadRate is the reads per second admitted; 0: no rate limit.
	ReadRate Derived[int]
	// InFlight is how many requests of the namespace may run at once in
	// one gateway process; 0: only the process's cap and fair share bound
	// it.
	InFlight Derived[int]
	// PrincipalShare is the percentage of each limit one principal may use.
	PrincipalShare Derived[int]
}

// DeriveLimits derives the admission limits of ns from its needs: rates at
// LimitHeadroom times write_rps and read_rps, an in-flight quota by
// Little's law at that rate and the declared p99 (at least
// InFlightLatencyFloor, at least MinInFlightQuota). A namespace without
// rates has no rate limit and no quota of its own: the gateway process's
// in-flight cap and its fair sharing bound it. It is pure; ns is assumed
// valid.
func DeriveLimits(ns Namespace) AdmissionLimits {
	nd := ns.Needs
	var l AdmissionLimits
	l.WriteRate = rateLimit("write_rps", nd.WriteRPS)
	l.ReadRate = rateLimit("read_rps", nd.ReadRPS)
	if rps := nd.WriteRPS + nd.ReadRPS; rps > 0 {
		lat := max(time.Duration(nd.P99Latency), InFlightLatencyFloor)
		q := max(MinInFlightQuota, int(math.Ceil(float64(LimitHeadroom*rps)*lat.Seconds())))
		latWhy := fmt.Sprintf("p99_latency %v", lat)
		if time.Duration(nd.P99Latency) < InFlightLatencyFloor {
			latWhy = fmt.Sprintf("a request time of %v (p99_latency below it or not stated)", InFlightLatencyFloor)
		}
		l.InFlight = Derived[int]{q, fmt.Sprintf("%d× (write_rps + read_rps = %d) × %s, at least %d; capped by the process's in-flight cap", LimitHeadroom, rps, latWhy, MinInFlightQuota)}
	} else {
		l.InFlight = Derived[int]{0, "no rates stated: no quota of its own; the process's in-flight cap, shared fairly between busy namespaces, bounds it"}
	}
	switch s := ns.Limits.PrincipalShare; s {
	case 0, 100:
		l.PrincipalShare = Derived[int]{100, "limits.principal_share not stated: one caller may use the namespace's whole limits"}
	default:
		l.PrincipalShare = Derived[int]{s, fmt.Sprintf("limits.principal_share=%d: one caller may use %d%% of each limit", s, s)}
	}
	return l
}

// rateLimit is the rate limit of a declared rate need.
func rateLimit(field string, rps int) Derived[int] {
	if rps == 0 {
		return Derived[int]{0, field + " not stated: no rate limit"}
	}
	return Derived[int]{LimitHeadroom * rps, fmt.Sprintf("%d× %s=%d; beyond it requests are shed with RESOURCE_EXHAUSTED", LimitHeadroom, field, rps)}
}

// validateLimits reports the first thing wrong with n.Limits.
func (n Namespace) validateLimits() error {
	if s := n.Limits.PrincipalShare; s < 0 || s > 100 {
		return fmt.Errorf("limits.principal_share: %d is not a percentage from 1 to 100 (0 or leaving it out means 100)", s)
	}
	return nil
}
