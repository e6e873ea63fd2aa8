package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/prism-data/prism/subjects"
)

// --help must not print a DSN from the environment: it may hold a password.
func TestHelpDoesNotPrintTheDSN(t *testing.T) {
	t.Setenv("PRISM_POSTGRES_DSN", "postgres://prism:s3cr3t-for-test@db/prism")
	for _, cmd := range []string{"serve", "bench"} {
		root := newRootCmd()
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{cmd, "--help"})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "--postgres-dsn") {
			t.Fatalf("%s --help lacks --postgres-dsn:\n%s", cmd, out.String())
		}
		if strings.Contains(out.String(), "s3cr3t-for-test") {
			t.Errorf("%s --help prints the DSN from PRISM_POSTGRES_DSN", cmd)
		}
	}
}

// README's table of prism serve flags has a row for every flag serve
// shows in --help.
func TestReadmeListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	serve, _, err := newRootCmd().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		if row := "| `--" + f.Name + "` |"; !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row %q for prism serve --%s", row, f.Name)
		}
	})
}

// freeAddr is a loopback host:port nothing listened on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// --max-in-flight and --max-value-bytes reach the gateway of the process
// serve runs: /metrics reports the cap, and an upload above the value
// limit is INVALID_ARGUMENT naming it while one at the limit starts.
func TestServeLimitFlags(t *testing.T) {
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(io.Discard)
		root.SetArgs([]string{"serve", "--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--http-listen", httpAddr, "--log-level", "error",
			"--max-in-flight", "3", "--max-in-flight-bytes", "1048576", "--max-value-bytes", "1048576"})
		done <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if resp, err = http.Get("http://" + httpAddr + "/metrics"); err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				metrics = string(b)
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve not ready within 30s")
		}
	}
	if !strings.Contains(metrics, "\nprism_gateway_in_flight_capacity 3\n") {
		i := strings.Index(metrics, "\nprism_gateway_in_flight_capacity")
		t.Errorf("/metrics has no prism_gateway_in_flight_capacity 3 (found at %d):\n%.60s", i, metrics[max(i, 0):])
	}
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	upload := func(size int) *nats.Msg {
		t.Helper()
		msg, err := nc.Request(subjects.Write("demo", "upload"), fmt.Appendf(nil, `{"id":"ZG9j","key":"Ym9keQ==","size":"%d"}`, size), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	if msg := upload(1<<20 + 1); msg.Header.Get(subjects.HeaderErrorCode) != "INVALID_ARGUMENT" || !strings.Contains(string(msg.Data), "the limit is 1048576") {
		t.Errorf("upload above --max-value-bytes: %v %s; want INVALID_ARGUMENT naming 1048576", msg.Header, msg.Data)
	}
	if msg := upload(1 << 20); msg.Header.Get(subjects.HeaderErrorCode) != "" || !strings.Contains(string(msg.Data), "uploadId") {
		t.Errorf("upload at --max-value-bytes: %v %s; want an upload id", msg.Header, msg.Data)
	}
}

// The limit flags are checked before serve touches anything, each error
// naming its flag.
func TestServeRefusesBadLimits(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"negative in-flight cap", []string{"--max-in-flight", "-1"}, "--max-in-flight -1: want at least 1 request"},
		{"negative in-flight bytes", []string{"--max-in-flight-bytes", "-2"}, "--max-in-flight-bytes -2: want at least 1 byte"},
		{"value limit below 512 KiB", []string{"--max-value-bytes", "1000"}, "--max-value-bytes 1000: want at least 524288"},
		{"not a number", []string{"--max-value-bytes", "64MiB"}, `invalid argument "64MiB" for "--max-value-bytes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := runCLI(t, append([]string{"serve", "--data-dir", dir}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("serve made its data directory before refusing the flags: %v", err)
			}
		})
	}
}
