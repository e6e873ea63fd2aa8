package itest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
)

// TestTimeSeriesEndToEnd appends to a timeseries namespace of a running
// prism, reads ranges (edges, order, pagination), searches by tag, restarts
// prism and reads the same again, on each backend.
func TestTimeSeriesEndToEnd(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testTimeSeriesEndToEnd(t, backend) })
	}
}

func testTimeSeriesEndToEnd(t *testing.T, backend string) {
	name, extra := "metrics", []string(nil)
	if backend == "postgres" {
		name = pgtest.Namespace(t, "ts-")
		extra = []string{"--postgres-dsn", pgtest.DSN(t)}
	}
	yaml := fmt.Sprintf("name: %s\nabstraction: timeseries\nbackend: %s\nconsistency: read-your-writes\nretention: 8760h\n", name, backend)
	cfg := configDir(t, yaml)
	p := startPrism(t, t.TempDir(), 0, append([]string{"--config", cfg}, extra...)...)
	_, c := p.connect(t)
	ts := c.TimeSeries(name, client.ReadYourWrites())
	ctx := testCtx(t)

	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	// cpu: 250 events one second apart, two at each of the first times (ids a and b);
	// the host tag alternates.
	var events []client.Event
	for i := 0; i < 250; i++ {
		host := fmt.Sprint("h", i%2)
		events = append(events, client.Event{Time: at(i), ID: []byte("a"), Tags: map[string]string{"host": host}, Payload: []byte(fmt.Sprint(i))})
		if i < 3 {
			events = append(events, client.Event{Time: at(i), ID: []byte("b"), Tags: map[string]string{"host": host}, Payload: []byte(fmt.Sprint(i, "b"))})
		}
	}
	if _, err := ts.Append(ctx, []byte("cpu"), events); err != nil {
		t.Fatal(err)
	}
	// A replayed append (same time and id, other payload) changes nothing.
	if _, err := ts.Append(ctx, []byte("cpu"), []client.Event{{Time: at(0), ID: []byte("a"), Payload: []byte("dup")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Append(ctx, []byte("mem"), []client.Event{{Time: at(5), ID: []byte("a"), Tags: map[string]string{"host": "h1"}, Payload: []byte("m")}}); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T) {
		// [at(1), at(3)): the two events at 1 and at 2, in (time, id) order.
		got, next, err := ts.ReadRange(ctx, []byte("cpu"), client.Between(at(1), at(3)))
		if err != nil || next != "" {
			t.Fatalf("range: %v, next %q", err, next)
		}
		want := []string{"1", "1b", "2", "2b"}
		if len(got) != len(want) {
			t.Fatalf("range [1,3) = %d events, want %d", len(got), len(want))
		}
		for i, e := range got {
			if string(e.Payload) != want[i] {
				t.Fatalf("range event %d = %s, want %s", i, e.Payload, want[i])
			}
		}
		// All 253 events, descending, in pages of 7.
		var all []client.Event
		token := ""
		for {
			page, next, err := ts.ReadRange(ctx, []byte("cpu"), client.Descending(), client.PageSize(7), client.PageToken(token))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if token = next; token == "" {
				break
			}
		}
		if len(all) != 253 || string(all[0].Payload) != "249" || string(all[252].Payload) != "0" {
			t.Fatalf("descending pages: %d events, first %s last %s", len(all), all[0].Payload, all[len(all)-1].Payload)
		}
		latest, err := ts.Latest(ctx, []byte("cpu"), 2)
		if err != nil || len(latest) != 2 || string(latest[0].Payload) != "249" || string(latest[1].Payload) != "248" {
			t.Fatalf("latest 2 = %v, %v", latest, err)
		}
		// host=h1 in [at(0), at(6)): cpu at 1, 1b, 3, 5 and mem at 5.
		found, _, err := ts.Search(ctx, map[string]string{"host": "h1"}, client.Between(at(0), at(6)))
		if err != nil {
			t.Fatal(err)
		}
		var gotSearch []string
		for _, e := range found {
			gotSearch = append(gotSearch, string(e.SeriesID)+":"+string(e.Payload))
		}
		if fmt.Sprint(gotSearch) != "[cpu:1 cpu:1b cpu:3 cpu:5 mem:m]" {
			t.Fatalf("search host=h1 = %v", gotSearch)
		}
	}
	// A token that is base64 but not one Prism made blames the caller.
	if _, _, err := ts.ReadRange(ctx, []byte("cpu"), client.PageToken("AAAA")); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("forged page token: %v, want ErrInvalidArgument", err)
	}
	t.Run("before restart", check)
	p.stop()
	p.restart()
	t.Run("after restart", check)
}
