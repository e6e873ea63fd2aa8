package natstest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/prism-data/prism/itest/natstest"
)

// stopTB records a Fatal or a Skip instead of ending the real test.
type stopTB struct {
	testing.TB
	fatal, skip string
}

func (s *stopTB) Fatalf(format string, args ...any) {
	s.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (s *stopTB) Skipf(format string, args ...any) {
	s.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// standalone calls natstest.Standalone with PRISM_STANDALONE_NATS_URL set
// to url and returns the URL it gave and what it stopped with.
func standalone(t *testing.T, url string) (string, *stopTB) {
	t.Setenv(natstest.StandaloneURLEnv, url)
	tb := &stopTB{TB: t}
	var got string
	done := make(chan struct{})
	go func() {
		defer close(done)
		url, nc, _ := natstest.Standalone(tb)
		got = url
		if err := nc.Flush(); err != nil {
			tb.fatal = "flush: " + err.Error()
		}
	}()
	<-done
	return got, tb
}

func TestStandaloneFromEnv(t *testing.T) {
	s := natstest.Server(t)
	url, tb := standalone(t, s.ClientURL())
	if tb.fatal != "" || tb.skip != "" || url != s.ClientURL() {
		t.Fatalf("Standalone = %q, fatal %q, skip %q; want %s", url, tb.fatal, tb.skip, s.ClientURL())
	}
}

func TestStandaloneRequiredWhenSet(t *testing.T) {
	noJS, err := server.NewServer(&server.Options{Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	noJS.Start()
	t.Cleanup(noJS.Shutdown)
	if !noJS.ReadyForConnections(10 * time.Second) {
		t.Fatal("server without JetStream not ready")
	}
	for url, want := range map[string]string{
		"nats://127.0.0.1:1": "no standalone nats-server at nats://127.0.0.1:1",
		noJS.ClientURL():     "has no JetStream",
	} {
		_, tb := standalone(t, url)
		if tb.skip != "" || !strings.Contains(tb.fatal, want) || !strings.Contains(tb.fatal, natstest.StandaloneURLEnv+" is set") {
			t.Errorf("Standalone(%s): fatal %q, skip %q; want a failure with %q naming %s", url, tb.fatal, tb.skip, want, natstest.StandaloneURLEnv)
		}
	}
}
