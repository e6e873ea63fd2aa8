package client_test

// The README's Go snippets are the regions between "// snippet: NAME" and
// "// end snippet" of these examples (TestReadmeSnippets checks they are the
// same), so every snippet the README prints compiles as printed. The
// examples have no Output: they are compiled, not run.

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/subjects"
)

func Example_secured() {
	run := func(ctx context.Context) error {
		// snippet: secured
		nc, err := nats.Connect("nats://127.0.0.1:4334",
			nats.RootCAs("secure-data/auth/ca.pem"),
			nats.ClientCert("secure-data/auth/users/app.pem", "secure-data/auth/users/app-key.pem"),
			// app may receive replies only under its own prefix.
			nats.CustomInboxPrefix(subjects.InboxPrefix("app")))
		if err != nil {
			return err
		}
		defer nc.Close()
		c, err := client.New(nc)
		if err != nil {
			return err
		}
		_, err = c.KeyValue("orders").Put(ctx, []byte("order1"), []client.Item{{Key: []byte("status"), Value: []byte("paid")}})
		if errors.Is(err, client.ErrPermissionDenied) {
			// the policy of orders does not let app write
		}
		// end snippet
		return err
	}
	_ = run
}

func Example_keyValue() {
	run := func(ctx context.Context) error {
		// snippet: keyvalue
		nc, err := nats.Connect("nats://127.0.0.1:4333")
		if err != nil {
			return err
		}
		defer nc.Close()
		c, err := client.New(nc)
		if err != nil {
			return err
		}
		kv := c.KeyValue("demo", client.ReadYourWrites())

		items := []client.Item{{Key: []byte("name"), Value: []byte("Ada")}}
		if _, err := kv.Put(ctx, []byte("user-1"), items); err != nil {
			return err
		}
		rec, err := kv.Get(ctx, []byte("user-1")) // waits for the put: read-your-writes
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, []byte("user-1"), items, client.IfRevision(rec.Revision))
		if errors.Is(err, client.ErrConflict) {
			// someone else wrote first: read again
		}
		ids, next, err := kv.Scan(ctx, client.PageSize(100)) // next: the page token of the rest
		if err != nil {
			return err
		}
		_, err = kv.Delete(ctx, []byte("user-1"), nil) // nil keys: the whole record
		if err != nil {
			return err
		}
		seqs, err := kv.Mutate(ctx, []client.Mutation{{ID: []byte("a"), Items: items}, {ID: []byte("b"), Delete: true}})
		// end snippet
		_, _, _ = ids, next, seqs
		return err
	}
	_ = run
}

func Example_timeSeries() {
	run := func(ctx context.Context, c *client.Client) error {
		// snippet: timeseries
		ts := c.TimeSeries("metrics", client.ReadYourWrites())
		_, err := ts.Append(ctx, []byte("host-1"), []client.Event{
			{Time: time.Now(), ID: []byte("boot"), Tags: map[string]string{"region": "eu"}, Payload: []byte(`{"cpu":0.4}`)},
		})
		if err != nil {
			return err
		}
		from, to := time.Now().Add(-time.Hour), time.Time{} // zero time: no bound
		events, next, err := ts.ReadRange(ctx, []byte("host-1"), client.Between(from, to), client.PageSize(500))
		if err != nil {
			return err
		}
		latest, err := ts.Latest(ctx, []byte("host-1"), 10) // newest first
		if err != nil {
			return err
		}
		found, next, err := ts.Search(ctx, map[string]string{"region": "eu"},
			client.Between(from, to), client.Descending()) // client.InSeries(id) for one series
		// end snippet
		_, _, _, _ = events, next, latest, found
		return err
	}
	_ = run
}

func Example_log() {
	run := func(ctx context.Context, c *client.Client) error {
		// snippet: log
		l := c.Log("clicks", client.ReadYourWrites())
		_, err := l.Append(ctx, []byte("user-1"), []byte("/home"), map[string]string{"page": "home"})
		if err != nil {
			return err
		}
		page, err := l.FetchKey(ctx, []byte("user-1"), 0) // waits for the append: read-your-writes
		if err != nil {
			return err
		}
		page, err = l.Fetch(ctx, 2, page.NextOffset, client.Until(100), client.MaxRecords(10))
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			_ = r // r.Partition, r.Offset, r.Key, r.Value, r.Headers, r.Seq, r.ID, r.Time
		}
		// end snippet
		return nil
	}
	_ = run
}

func Example_subscribe() {
	run := func(ctx context.Context, c *client.Client, lastSeen uint64) error {
		// snippet: subscribe
		sub, err := c.Subscribe(ctx, "demo", client.FromSeq(lastSeen+1)) // or FromTime(t), NewOnly(); default: all
		if err != nil {
			return err
		}
		defer sub.Stop()
		for ch, err := range sub.Changes(ctx) { // or ch, err := sub.Next(ctx)
			if err != nil {
				return err
			}
			switch {
			case ch.Err != nil: // a malformed message at ch.Seq; the subscription goes on
			case ch.KeyValue != nil: // *prismv1.KeyValueEvent: a put, a delete, or a replace (compaction)
			case ch.TimeSeries != nil: // *prismv1.TimeSeriesAppend
			case ch.Log != nil: // *prismv1.LogEvent
			}
			lastSeen = ch.Seq // == sub.LastSeq(); ch.ID is the CloudEvent id
		}
		// end snippet
		return nil
	}
	_ = run
}
