package devinit_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/prism-data/prism/auth/devinit"
	"github.com/prism-data/prism/subjects"
)

func TestParseUser(t *testing.T) {
	tests := []struct {
		in   string
		name string
		grps []string
	}{
		{"app", "app", nil},
		{"admin:admins", "admin", []string{"admins"}},
		{"orders-svc:writers+readers", "orders-svc", []string{"writers", "readers"}},
	}
	for _, tt := range tests {
		if u := devinit.ParseUser(tt.in); u.Name != tt.name || !slices.Equal(u.Groups, tt.grps) {
			t.Errorf("ParseUser(%q) = %+v, want %s %v", tt.in, u, tt.name, tt.grps)
		}
	}
}

// What prism auth init prints: the files, how to serve, and per user the
// TLS flags and the inbox prefix its client must use.
func TestResultWriteText(t *testing.T) {
	dir := t.TempDir()
	res, err := devinit.Init(dir, devinit.Options{Users: []devinit.User{{Name: "admin", Groups: []string{"admins", "ops"}}, {Name: "app"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := res.WriteText(&out, "./data"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"into " + res.Dir + " (keep it private)",
		"prism serve --data-dir ./data --auth-config " + res.AuthConfig + "\n",
		"\nadmin (groups: admins, ops):\n  --tls-cert " + res.Users[0].Cert + " --tls-key " + res.Users[0].Key + " --tls-ca " + res.CACert + "\n",
		"\napp (groups: none):\n",
		"\n  inbox prefix: " + subjects.InboxPrefix("app") + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
