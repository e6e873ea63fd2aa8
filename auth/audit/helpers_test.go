package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
)

// waitFor bounds how long a test waits for an asynchronous outcome. It is
// a guard against hanging, never an assertion on speed.
const waitFor = 20 * time.Second

// startStream starts an in-process server, connects and creates the audit
// stream.
func startStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Start(t)
	if _, err := audit.EnsureStream(context.Background(), js, audit.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return js
}

// newWriter returns a Writer on js with its metrics on a fresh registry,
// closed at cleanup.
func newWriter(t testing.TB, js jetstream.JetStream, opts ...audit.Option) (*audit.Writer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	w, err := audit.NewWriter(js, append([]audit.Option{audit.WithRegisterer(reg), audit.WithNode("test-node")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w, reg
}

// metric is the value of the metric name (with label result=result when
// result is not "") in reg.
func metric(t testing.TB, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result != "" {
				match := false
				for _, l := range m.GetLabel() {
					match = match || l.GetName() == "result" && l.GetValue() == result
				}
				if !match {
					continue
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{result=%q}", name, result)
	return 0
}

// list returns every record f selects.
func list(t testing.TB, js jetstream.JetStream, f audit.Filter) []audit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var out []audit.Record
	if err := audit.List(ctx, js, f, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return out
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, waitFor)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sample is a record of a test, with a distinct request id.
func sample(ns, op, principal, reqID string, ids ...string) audit.Record {
	raw := make([][]byte, len(ids))
	for i, id := range ids {
		raw[i] = []byte(id)
	}
	return audit.Record{
		Time:      time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC),
		Principal: auth.Principal{Name: principal, Groups: []string{"eng", "ops"}, Via: auth.ViaOIDC},
		Namespace: ns,
		Op:        op,
		Count:     len(ids),
		RawIDs:    raw,
		Code:      audit.CodeOK,
		Latency:   1234 * time.Microsecond,
		RequestID: reqID,
		TraceID:   "4bf92f3577b34da6a3ce929d0e0e4736",
		Seq:       42,
	}
}

// stored is rec as List returns it: ids hashed, defaults the writer
// fills in.
func stored(rec audit.Record, node string) audit.Record {
	if len(rec.RawIDs) > 0 {
		rec.IDs = nil
		for _, id := range rec.RawIDs[:min(len(rec.RawIDs), audit.MaxIDs)] {
			rec.IDs = append(rec.IDs, audit.HashID(rec.Namespace, id))
		}
		rec.Count = max(rec.Count, len(rec.RawIDs))
	}
	rec.RawIDs = nil
	if rec.IDs == nil {
		rec.IDs = []string{}
	}
	if rec.Principal.Groups == nil {
		rec.Principal.Groups = []string{}
	}
	if rec.Code == "" {
		rec.Code = audit.CodeOK
	}
	if rec.Node == "" {
		rec.Node = node
	}
	rec.Latency = rec.Latency.Truncate(time.Microsecond)
	rec.Time = rec.Time.UTC()
	return rec
}
