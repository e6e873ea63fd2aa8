package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{name: "ok", change: func(*Config) {}},
		{name: "scenario", change: func(c *Config) { c.Scenario = "scan" }, wantErr: "--scenario"},
		{name: "concurrency", change: func(c *Config) { c.Concurrency = 0 }, wantErr: "--concurrency"},
		{name: "rate", change: func(c *Config) { c.Rate = -1 }, wantErr: "--rate"},
		{name: "key dist", change: func(c *Config) { c.KeyDist = "pareto" }, wantErr: "--key-dist"},
		{name: "zipf s", change: func(c *Config) { c.KeyDist, c.ZipfS = "zipf", 1 }, wantErr: "--zipf-s"},
		{name: "read ratio", change: func(c *Config) { c.ReadRatio = 1.5 }, wantErr: "--read-ratio"},
		{name: "postgres without dsn", change: func(c *Config) { c.Backend = "postgres" }, wantErr: "--postgres-dsn"},
		{name: "consistency", change: func(c *Config) { c.Consistency = "linearizable" }, wantErr: "--consistency"},
		{name: "replay remote", change: func(c *Config) { c.Scenario, c.NATSURL = ScenarioReplay, "nats://x:4222" }, wantErr: "replay"},
		{name: "migrate without dsn", change: func(c *Config) { c.Scenario = ScenarioMigrate }, wantErr: "--scenario migrate"},
		{name: "migrate from postgres", change: func(c *Config) { c.Scenario, c.Backend, c.PostgresDSN = ScenarioMigrate, "postgres", "postgres://x" }, wantErr: "--backend sqlite"},
		{name: "remote without namespace", change: func(c *Config) { c.NATSURL = "nats://x:4222" }, wantErr: "--namespace"},
		{name: "remote needs no start", change: func(c *Config) { c.NATSURL, c.Namespace, c.Start = "nats://x:4222", "demo", nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := shortConfig(ScenarioWrite)
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate: %v; want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

// Run refuses an invalid config before it starts anything.
func TestRunValidatesFirst(t *testing.T) {
	c := shortConfig(ScenarioWrite)
	c.Concurrency = 0
	c.Start = func(context.Context, EmbeddedConfig) (Embedded, error) {
		t.Fatal("Run started a Prism for an invalid config")
		return nil, nil
	}
	if _, err := Run(context.Background(), c, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--concurrency") {
		t.Fatalf("Run: %v; want the --concurrency error", err)
	}
}

// A failed start is reported as such, naming the cause.
func TestRunReportsAFailedStart(t *testing.T) {
	c := shortConfig(ScenarioWrite)
	c.DataDir = t.TempDir()
	var got EmbeddedConfig
	c.Start = func(_ context.Context, ec EmbeddedConfig) (Embedded, error) {
		got = ec
		return nil, errors.New("port taken")
	}
	_, err := Run(context.Background(), c, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "start the embedded stack: port taken") {
		t.Fatalf("Run: %v; want the start error", err)
	}
	if got.DataDir != c.DataDir || got.Namespace.Name != "bench" || got.Namespace.Backend != "sqlite" || string(got.Namespace.Consistency) != "eventual" || got.By != "prism bench" {
		t.Errorf("start asked for %+v", got)
	}
}
