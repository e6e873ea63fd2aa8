package namespaces_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

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
