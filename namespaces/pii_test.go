package namespaces_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
)

func TestPIIFieldsForms(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []namespaces.PIIField
		wantErr    string
	}{
		{"list means generic", "pii: [email, nick]", []namespaces.PIIField{{Name: "email", Kind: pii.KindGeneric}, {Name: "nick", Kind: pii.KindGeneric}}, ""},
		{"mapping keeps order and kinds", "pii: {nick: name, email: email}", []namespaces.PIIField{{Name: "nick", Kind: pii.KindName}, {Name: "email", Kind: pii.KindEmail}}, ""},
		{"unknown kind", "pii: {email: mail}", nil, `pii.email: pii: unknown kind "mail"`},
		{"twice", "pii: [email, email]", nil, `"email" is declared twice`},
		{"a scalar", "pii: email", nil, "want a list of field names or a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n struct {
				PII namespaces.PIIFields `yaml:"pii"`
			}
			err := yaml.Unmarshal([]byte(tc.yaml), &n)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := n.PII.Fields()
			if len(got) != len(tc.want) {
				t.Fatalf("fields %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("fields %v, want %v", got, tc.want)
				}
			}
			// YAML and JSON give back the same declaration.
			y, err := yaml.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				PII namespaces.PIIFields `yaml:"pii"`
			}
			if err := yaml.Unmarshal(y, &back); err != nil || back.PII != n.PII {
				t.Fatalf("YAML round trip %q gave %v, %v", y, back.PII.Fields(), err)
			}
			j, err := json.Marshal(n.PII)
			if err != nil {
				t.Fatal(err)
			}
			var jback namespaces.PIIFields
			if err := json.Unmarshal(j, &jback); err != nil || jback != n.PII {
				t.Fatalf("JSON round trip %s gave %v, %v", j, jback.Fields(), err)
			}
		})
	}
	if k, ok := namespaces.NewPIIFields(namespaces.PIIField{Name: "email", Kind: pii.KindEmail}).Kind("email"); !ok || k != pii.KindEmail {
		t.Fatalf("Kind = %v, %v", k, ok)
	}
}

func TestPIIDeclarationIsValidated(t *testing.T) {
	base := namespaces.Namespace{Name: "users", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite",
		Fields: namespaces.NewNames("email", "nick"), PII: namespaces.GenericPII("email")}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mod  func(*namespaces.Namespace)
		want string
	}{
		"bad redaction":         {func(n *namespaces.Namespace) { n.PIIRedaction = "hide" }, `pii_redaction: "hide" is not one of mask, omit`},
		"redaction without pii": {func(n *namespaces.Namespace) { n.PII = namespaces.PIIFields{}; n.PIIRedaction = "omit" }, "declares no pii fields"},
		"pii on a log":          {func(n *namespaces.Namespace) { n.Abstraction = namespaces.AbstractionLog; n.Backend = "kafka" }, "log is not supported"},
	} {
		n := base
		tc.mod(&n)
		if err := n.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestTimeSeriesPIIDeclaration(t *testing.T) {
	base := namespaces.Namespace{Name: "visits", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite",
		Fields: namespaces.NewNames("user_email", "page"),
		PII:    namespaces.NewPIIFields(namespaces.PIIField{Name: "user_email", Kind: pii.KindEmail}, namespaces.PIIField{Name: "payload", Kind: pii.KindGeneric})}
	if err := base.Validate(); err != nil {
		t.Fatalf("tags and the payload: %v", err)
	}
	// Sealed now: the plan no longer warns of plaintext.
	p, err := namespaces.Derive(base, namespaces.Cluster{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Warnings {
		if strings.Contains(w, "pii") || strings.Contains(w, "plaintext") {
			t.Errorf("plan warns %q", w)
		}
	}
	for _, tc := range []struct {
		name string
		mod  func(*namespaces.Namespace)
		want string
	}{
		{"an undeclared tag", func(n *namespaces.Namespace) { n.PII = namespaces.GenericPII("phone") }, `pii[0]: "phone" is not a declared field; fields are user_email, page`},
		{"a tag named payload", func(n *namespaces.Namespace) { n.Fields = namespaces.NewNames("user_email", "payload") }, `a tag named "payload" is ambiguous`},
		{"a reserved tag", func(n *namespaces.Namespace) { n.Fields = namespaces.NewNames("user_email", "~pii.x") }, `fields[1]: "~pii.x" begins with "~pii.", which is reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			tc.mod(&n)
			if err := n.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error containing %q", err, tc.want)
			}
		})
	}
	// In a keyvalue namespace payload is an ordinary item key: it must be
	// declared in fields.
	kv := namespaces.Namespace{Name: "users", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite",
		Fields: namespaces.NewNames("email"), PII: namespaces.GenericPII("payload")}
	if err := kv.Validate(); err == nil || !strings.Contains(err.Error(), `"payload" is not a declared field`) {
		t.Fatalf("keyvalue pii payload without the field: %v", err)
	}
}

// TestAdminForgetsATimeSeries: pii.forget (prism forget NS SERIES) takes a
// timeseries namespace and a series id like a keyvalue record.
func TestAdminForgetsATimeSeries(t *testing.T) {
	ctx := context.Background()
	nc, js := natstest.Start(t)
	reg, _, err := namespaces.OpenRegistry(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kek")
	if err := pii.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	kek, err := pii.LoadFileKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pii.OpenKeyring(ctx, js, pii.KeyringConfig{KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	client := startAdmin(t, nc, reg, namespaces.AdminConfig{Cluster: namespaces.Cluster{Nodes: 1}, Keys: keys})
	ns := namespaces.Namespace{Name: "visits", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite",
		Fields: namespaces.NewNames("user_email"), PII: namespaces.GenericPII("user_email", "payload")}
	if _, err := client.Apply(ctx, ns, 0, "ada"); err != nil {
		t.Fatalf("apply a timeseries namespace with PII: %v", err)
	}
	rk, err := keys.SealKey(ctx, "visits", []byte("series-1"))
	if err != nil {
		t.Fatal(err)
	}
	sealed := rk.Seal("user_email", []byte("ada@example.com"))
	r, err := client.Forget(ctx, "visits", []byte("series-1"), "dpo")
	if err != nil || !r.Forgotten {
		t.Fatalf("Forget = %+v, %v; want forgotten", r, err)
	}
	h, err := pii.Inspect(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.OpenKey(ctx, "visits", []byte("series-1"), h); !errors.Is(err, pii.ErrForgotten) {
		t.Fatalf("the series' key after forget: %v, want ErrForgotten", err)
	}
}
