package itest

import (
	"bytes"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to read the files as they are

	"github.com/prism-data/prism/client"
)

// fillDemo writes n events to the demo namespace of p from 16 writers:
// multi-item puts, item deletes and record deletes over 2,000 ids, so
// records are overwritten many times. It returns the last sequence.
func fillDemo(t *testing.T, kv *client.KeyValue, n int) uint64 {
	t.Helper()
	ctx := testCtx(t)
	var (
		mu   sync.Mutex
		last uint64
		wg   sync.WaitGroup
	)
	const writers = 16
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for i := w; i < n; i += writers {
				id := []byte(fmt.Sprintf("rec-%04d", r.IntN(2000)))
				var seq uint64
				var err error
				switch x := r.IntN(20); {
				case x == 0:
					seq, err = kv.Delete(ctx, id, nil)
				case x < 3:
					seq, err = kv.Delete(ctx, id, [][]byte{[]byte(fmt.Sprint("k", r.IntN(3)))})
				default:
					seq, err = kv.Put(ctx, id, []client.Item{item(fmt.Sprint("k", r.IntN(3)), fmt.Sprint(i)), item("w", fmt.Sprint(w))})
				}
				if err != nil {
					t.Errorf("write %d: %v", i, err)
					return
				}
				mu.Lock()
				last = max(last, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return last
}

// openReadOnly opens the SQLite file at path read-only.
func openReadOnly(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro"}).String())
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// dumpSQLite reads every row of every table of the SQLite file at path,
// opened read-only, as sorted text lines.
func dumpSQLite(t *testing.T, path string) []string {
	t.Helper()
	db := openReadOnly(t, path)
	defer db.Close()
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var name string
		if err := tables.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	tables.Close()
	var out []string
	for _, name := range names {
		rows, err := db.Query(`SELECT * FROM "` + name + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			line := name
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = fmt.Sprintf("%q", b)
				}
				line += fmt.Sprint(" ", v)
			}
			out = append(out, line)
		}
		rows.Close()
	}
	slices.Sort(out)
	return out
}

// checkpointOf reads the checkpoint of the SQLite file at path; 0 when
// the file or its schema does not exist yet (a replay killed at once).
func checkpointOf(t *testing.T, path string) uint64 {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db := openReadOnly(t, path)
	defer db.Close()
	var seq uint64
	if err := db.QueryRow(`SELECT seq FROM checkpoint`).Scan(&seq); err != nil {
		t.Logf("checkpoint of %s: %v", path, err)
		return 0
	}
	return seq
}

var replayProgress = regexp.MustCompile(`(?m)^replay demo→rebuild: (\d+)/(\d+) events \(`)

// TestReplayKilledAndResumed fills the demo namespace through a running
// prism serve, replays it into a new SQLite target with `prism replay`,
// kills the replay with SIGKILL at random points a few times, runs it
// again until it finishes, and compares the replayed target with the
// served projection row by row: identical.
func TestReplayKilledAndResumed(t *testing.T) {
	dir := t.TempDir()
	p := startPrism(t, dir, 0)
	_, c := p.connect(t)
	kv := c.KeyValue("demo")
	last := fillDemo(t, kv, 20_000)
	// demo is strong: every acknowledged write is applied.
	served := filepath.Join(dir, "sqlite", "demo.db")
	target := filepath.Join(dir, "sqlite", "demo.rebuild.db")

	args := []string{"replay", "demo", "--target", "rebuild", "--data-dir", dir, "--nats-url", p.url,
		// Slow enough (about 4s in all) that the kills land mid-replay.
		"--max-rate", "5000", "--progress-interval", "100ms"}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	midway := 0
	var out bytes.Buffer
	for run := 1; ; run++ {
		if run > 20 {
			t.Fatalf("replay not done after 20 runs; last output:\n%s", out.String())
		}
		out.Reset()
		cmd := exec.Command(prismBin, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if run <= 4 {
			select {
			case err := <-done:
				t.Logf("run %d ended before its kill: %v", run, err)
			case <-time.After(time.Duration(300+r.IntN(700)) * time.Millisecond):
				_ = cmd.Process.Kill()
				<-done
				cp := checkpointOf(t, target)
				t.Logf("run %d killed at checkpoint %d of %d", run, cp, last)
				if cp > 0 && cp < last {
					midway++
				}
				continue
			}
		} else {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run %d: %v\n%s", run, err, out.String())
				}
			case <-time.After(90 * time.Second): // generous: the whole replay takes seconds
				_ = cmd.Process.Kill()
				t.Fatalf("run %d did not finish within 90s\n%s", run, out.String())
			}
		}
		if strings.Contains(out.String(), "replayed") {
			break
		}
	}
	if midway < 2 {
		t.Fatalf("only %d of the kills landed mid-replay; the test did not exercise a resume", midway)
	}

	// The last run's plain progress lines count up to the end.
	m := replayProgress.FindAllStringSubmatch(out.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no progress line:\n%s", out.String())
	}
	end := m[len(m)-1]
	if end[1] != end[2] {
		t.Fatalf("last progress line %q: done != total\n%s", end[0], out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("checkpoint %d", last)) {
		t.Fatalf("summary does not reach checkpoint %d:\n%s", last, out.String())
	}

	want, got := dumpSQLite(t, served), dumpSQLite(t, target)
	if len(want) < 1000 {
		t.Fatalf("served projection has only %d rows", len(want))
	}
	if !slices.Equal(got, want) {
		diff := 0
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				diff = i
				break
			}
		}
		t.Fatalf("replayed target (%d rows) differs from the served projection (%d rows); first difference at row %d:\n got %s\nwant %s",
			len(got), len(want), diff, got[min(diff, len(got)-1)], want[min(diff, len(want)-1)])
	}

	// The served target itself is refused while serve projects it.
	cmd := exec.Command(prismBin, "replay", "demo", "--target", "sqlite", "--data-dir", dir, "--nats-url", p.url)
	outb, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "is being projected by") {
		t.Fatalf("replay into the served target: %v\n%s", err, outb)
	}
}
