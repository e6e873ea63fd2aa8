package itest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/subjects"
)

// isSecurityTourLine reports whether a README request is one of the
// Security section's, on namespace orders.
func isSecurityTourLine(r readmeRequest) bool { return strings.HasPrefix(r.subject, "prism.orders.") }

// runCLI runs the prism binary with env added to the environment.
func runCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prismBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("prism %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestReadmeSecurityTour follows the README's Security section as
// printed: prism auth init, prism serve --auth-config, prism apply of its
// orders.yaml as admin, its nats req lines as app (certificate, inbox
// prefix from prism auth inbox), a request app may not make, and prism
// audit as the service user.
func TestReadmeSecurityTour(t *testing.T) {
	reqs := readmeRequestsOf(t, "orders", 2)
	data := t.TempDir()
	runCLI(t, nil, "auth", "init", "--data-dir", data)
	a := filepath.Join(data, "auth")
	p := startPrism(t, data, 0, "--auth-config", filepath.Join(a, "auth.yaml"))
	env := []string{"NATS_URL=" + p.url, "NATS_CA=" + filepath.Join(a, "ca.pem")}
	spec := writeSpec(t, readmeYAML(t, "name: orders"))
	// apply returns once the namespace is served, so the requests below
	// cannot meet NAMESPACE_NOT_FOUND.
	if out := runCLI(t, append(env, "NATS_CERT="+filepath.Join(a, "users", "admin.pem"), "NATS_KEY="+filepath.Join(a, "users", "admin-key.pem")), "apply", "-f", spec); !strings.Contains(out, "served: namespace orders takes requests") {
		t.Fatalf("prism apply did not wait for the namespace to be served:\n%s", out)
	}

	inbox := strings.TrimSpace(runCLI(t, nil, "auth", "inbox", "app"))
	if inbox != subjects.InboxPrefix("app") {
		t.Fatalf("prism auth inbox app = %q", inbox)
	}
	violations := make(chan error, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := natsconn.Options{
		URL: p.url, TLSCA: filepath.Join(a, "ca.pem"), InboxPrefix: inbox,
		TLSCert: filepath.Join(a, "users", "app.pem"), TLSKey: filepath.Join(a, "users", "app-key.pem"),
	}.Connect(ctx, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatalf("connect as app: %v", err)
	}
	defer app.Close()
	for _, r := range reqs {
		r.send(t, app)
	}
	if _, err := app.Request(subjects.Read("demo", "scan"), []byte("{}"), 2*time.Second); err == nil {
		t.Fatal("app scanned demo")
	}
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subjects.Read("demo", "scan")) {
			t.Fatalf("the server reported %v, want a permissions violation on demo's scan", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server reported no permissions violation for app's scan of demo")
	}

	// app may not apply: the server refuses the request, and prism says
	// so, naming who was refused.
	cmd := exec.Command(prismBin, "apply", "-f", spec)
	cmd.Env = append(os.Environ(), append(env, "NATS_CERT="+filepath.Join(a, "users", "app.pem"), "NATS_KEY="+filepath.Join(a, "users", "app-key.pem"))...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "refused to let app send the request") || strings.Contains(string(out), "DEADLINE_EXCEEDED") {
		t.Fatalf("prism apply as app: %v\n%s\nwant a refusal naming app", err, out)
	}

	// A replay, as the Prism service user, is audited too.
	runCLI(t, env, "replay", "orders", "--target", "rebuild", "--data-dir", data, "--nkey", filepath.Join(a, "service.nk"))

	out := runCLI(t, append(env, "NATS_CERT="+filepath.Join(a, "users", "app.pem"), "NATS_KEY="+filepath.Join(a, "users", "app-key.pem"), "NATS_INBOX_PREFIX="+inbox),
		"audit", "--nkey", filepath.Join(a, "service.nk"), "--namespace", "orders", "--json")
	for _, want := range []string{`"op":"write.put"`, `"op":"read.get"`, `"name":"app"`, `"op":"replay.run"`} {
		if !strings.Contains(out, want) {
			t.Errorf("prism audit of orders lacks %s:\n%s", want, out)
		}
	}
}
