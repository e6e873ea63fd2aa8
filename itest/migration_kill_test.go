package itest

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
)

// TestMigrationSurvivesKills kills prism serve with SIGKILL at random
// points of a throttled backfill and after every transition: each time the
// restarted process resumes the migration where its registry entry says,
// the new target's projector continues from its checkpoint, and the end
// result is identical to what was written.
func TestMigrationSurvivesKills(t *testing.T) {
	const keys = 20_000
	m := startMigrationEnv(t, "migkill", "eventual", keys)
	p, name, dir, dsn, kv, ctx := m.p, m.name, m.dir, m.dsn, m.kv, m.ctx

	// 4000 events/s: the backfill takes about five seconds, long enough to
	// be killed in the middle of it three times.
	p.mustCLI(t, "migrate", "start", name, "--to", "postgres", "--max-rate", "4000", "--adaptive=false")
	kills := 0
	for kills < 3 {
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		n := p.nsGet(t, name)
		if n.Migration.State != namespaces.MigrationBackfilling {
			break
		}
		p.kill()
		kills++
		p.restart()
	}
	if kills == 0 {
		t.Fatal("the backfill ended before it could be killed; lower --max-rate")
	}
	t.Logf("killed prism serve %d times during the backfill", kills)
	waitState(t, p, name, namespaces.MigrationShadowing)

	// Overwrite some records so the end state is not the loaded one.
	want := map[string]string{}
	for i := range keys {
		want[string(recID(i))] = "v0"
	}
	for i := 0; i < keys; i += 7 {
		v := fmt.Sprintf("after-%d", i)
		if _, err := kv.Put(ctx, recID(i), []client.Item{{Key: []byte("v"), Value: []byte(v)}}); err != nil {
			t.Fatal(err)
		}
		want[string(recID(i))] = v
	}

	steps := []struct {
		args    []string
		state   namespaces.MigrationState
		reading string
	}{
		{[]string{"migrate", "verify", name}, namespaces.MigrationVerified, "sqlite"},
		{[]string{"migrate", "cutover", name}, namespaces.MigrationCutOver, "postgres"},
		{[]string{"migrate", "rollback", name}, namespaces.MigrationShadowing, "sqlite"},
		{[]string{"migrate", "verify", name}, namespaces.MigrationVerified, "sqlite"},
		{[]string{"migrate", "cutover", name}, namespaces.MigrationCutOver, "postgres"},
	}
	for _, s := range steps {
		p.mustCLI(t, s.args...)
		p.kill()
		p.restart()
		if n := waitState(t, p, name, s.state); n.Migration.State != s.state {
			t.Fatalf("after %v and a kill: state %s", s.args, n.Migration.State)
		}
		waitReading(t, p, name, s.reading)
		rec, err := kv.Get(ctx, recID(7))
		if err != nil || string(rec.Items[0].Value) != want[string(recID(7))] {
			t.Fatalf("after %v and a kill: get = %+v, %v", s.args, rec, err)
		}
	}
	if r := migrateVerify(t, p, name); !r.Passed || r.Compared != keys {
		t.Fatalf("verify after the kills: %+v", r)
	}
	compareTargets(t, filepath.Join(dir, "sqlite", name+".db"), dsn, name, want)
	p.mustCLI(t, "migrate", "finalize", name)
	p.kill()
	p.restart()
	waitReading(t, p, name, "postgres")
	if n := p.nsGet(t, name); n.Backend != "postgres" || len(n.Targets) != 1 {
		t.Fatalf("after finalize and a kill: backend %s, targets %+v", n.Backend, n.Targets)
	}
}
