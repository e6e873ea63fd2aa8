package auth_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

func TestEncodePrincipal(t *testing.T) {
	p := auth.Principal{Name: "alice", Groups: []string{"b", "a", "b"}, Via: auth.ViaOIDC}
	enc := auth.EncodePrincipal(p)
	if enc != `{"n":"alice","g":["a","b"],"v":"oidc"}` {
		t.Fatalf("EncodePrincipal = %s", enc)
	}
	if p.Groups[0] != "b" {
		t.Fatal("EncodePrincipal changed its argument's groups")
	}
	got, err := auth.DecodePrincipal(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "alice" || got.Via != auth.ViaOIDC || !slices.Equal(got.Groups, []string{"a", "b"}) {
		t.Fatalf("round trip = %+v", got)
	}
	if enc := auth.EncodePrincipal(bob); enc != `{"n":"bob","v":"tls"}` {
		t.Fatalf("EncodePrincipal(bob) = %s", enc)
	}
}

func TestDecodePrincipal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"valid", `{"n":"alice","v":"oidc"}`, nil},
		{"valid with groups", `{"n":"alice","g":["x"],"v":"creds"}`, nil},
		{"empty", ``, auth.ErrInvalidPrincipal},
		{"not JSON", `alice`, auth.ErrInvalidPrincipal},
		{"array", `["alice"]`, auth.ErrInvalidPrincipal},
		{"null", `null`, auth.ErrInvalidPrincipal},
		{"empty name", `{"n":"","v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"no name", `{"v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"wildcard name", `{"n":"*","v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"unknown via", `{"n":"alice","v":"magic"}`, auth.ErrInvalidPrincipal},
		{"no via", `{"n":"alice"}`, auth.ErrInvalidPrincipal},
		{"unknown field", `{"n":"alice","v":"oidc","admin":true}`, auth.ErrInvalidPrincipal},
		{"trailing data", `{"n":"alice","v":"oidc"}{"n":"root","v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"empty group", `{"n":"alice","g":[""],"v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"control character", `{"n":"al\u0000ice","v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"oversized", `{"n":"` + strings.Repeat("a", auth.MaxEncodedPrincipal) + `","v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"name too long", `{"n":"` + strings.Repeat("a", auth.MaxNameLen+1) + `","v":"oidc"}`, auth.ErrInvalidPrincipal},
		{"too many groups", `{"n":"a","g":[` + strings.TrimSuffix(strings.Repeat(`"g",`, auth.MaxGroups+1), ",") + `],"v":"oidc"}`, auth.ErrInvalidPrincipal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := auth.DecodePrincipal(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && p.Name != "alice" {
				t.Fatalf("name = %q", p.Name)
			}
			if err != nil && len(tt.in) > 100 && strings.Contains(err.Error(), tt.in[:100]) {
				t.Fatal("the error quotes the input")
			}
		})
	}
}

func header(vals ...string) nats.Header {
	h := nats.Header{}
	for _, v := range vals {
		h.Add(subjects.HeaderRequestInfo, v)
	}
	return h
}

func TestFromRequestInfo(t *testing.T) {
	encAlice := strconvQuote(auth.EncodePrincipal(alice))
	tests := []struct {
		name    string
		h       nats.Header
		want    auth.Principal
		wantErr error
	}{
		{"callout principal", header(`{"acc":"APP","user":` + encAlice + `,"name":"app"}`), alice, nil},
		{"static user of an external server", header(`{"acc":"APP","user":"billing"}`), auth.Principal{Name: "billing", Via: auth.ViaNATS}, nil},
		{"no header: inside PRISM", nats.Header{}, auth.ServicePrincipal, nil},
		{"nil header", nil, auth.ServicePrincipal, nil},
		{"another account", header(`{"acc":"PRISM","user":` + encAlice + `}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"system account", header(`{"acc":"SYS","user":"x"}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"no account", header(`{"user":` + encAlice + `}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"no user (import without share)", header(`{"acc":"APP"}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"token user", header(`{"acc":"APP","user":"[REDACTED]"}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"two headers", header(`{"acc":"APP","user":"a"}`, `{"acc":"APP","user":"b"}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"not JSON", header(`acc=APP`), auth.Principal{}, auth.ErrUnauthenticated},
		{"empty", header(``), auth.Principal{}, auth.ErrUnauthenticated},
		{"garbage principal", header(`{"acc":"APP","user":"{not json"}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"service principal from APP", header(`{"acc":"APP","user":` + strconvQuote(auth.EncodePrincipal(auth.ServicePrincipal)) + `}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"development principal from APP", header(`{"acc":"APP","user":` + strconvQuote(auth.EncodePrincipal(auth.Anonymous)) + `}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"plain name with control character", header(`{"acc":"APP","user":"a\u0001"}`), auth.Principal{}, auth.ErrUnauthenticated},
		{"oversized", header(`{"acc":"APP","user":"` + strings.Repeat("a", auth.MaxRequestInfo) + `"}`), auth.Principal{}, auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := auth.FromRequestInfo(tt.h)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, status.ErrPermissionDenied) {
					t.Fatalf("err %v is not PERMISSION_DENIED", err)
				}
				return
			}
			if p.Name != tt.want.Name || p.Via != tt.want.Via || !slices.Equal(p.Groups, tt.want.Groups) {
				t.Fatalf("principal = %+v, want %+v", p, tt.want)
			}
		})
	}
}

// FuzzDecodePrincipal: no input panics; what decodes is valid and
// survives a round trip through EncodePrincipal.
func FuzzDecodePrincipal(f *testing.F) {
	for _, s := range []string{
		auth.EncodePrincipal(alice), auth.EncodePrincipal(root), `{"n":"a","v":"tls"}`,
		`{"n":"","v":"oidc"}`, `{"n":"a","g":null,"v":"nats"}`, `{}`, `[]`, `null`, `{"n":"a","v":"oidc"} `,
		`{"n":"\ud800","v":"oidc"}`, `{"N":"a","V":"oidc"}`, "{\"n\":\"a\xff\",\"v\":\"oidc\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := auth.DecodePrincipal(s)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidPrincipal) {
				t.Fatalf("error %v does not wrap ErrInvalidPrincipal", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded an invalid principal %+v: %v", p, err)
		}
		again, err := auth.DecodePrincipal(auth.EncodePrincipal(p))
		if err != nil {
			t.Fatalf("re-decode %+v: %v", p, err)
		}
		if again.Name != p.Name || again.Via != p.Via || !slices.Equal(again.Groups, slices.Compact(slices.Sorted(slices.Values(p.Groups)))) {
			t.Fatalf("round trip %+v -> %+v", p, again)
		}
	})
}

// FuzzFromRequestInfo: no header value panics; a principal is returned
// only for the APP account, never a service or development one, and
// always valid.
func FuzzFromRequestInfo(f *testing.F) {
	for _, s := range []string{
		`{"acc":"APP","user":` + strconvQuote(auth.EncodePrincipal(alice)) + `}`,
		`{"acc":"APP","user":"billing"}`, `{"acc":"PRISM"}`, `{"acc":"APP"}`, `{"acc":"APP","user":"{"}`,
		`{"acc":"APP","user":"[REDACTED]"}`, `{"acc":"app","user":"x"}`, `{"ACC":"APP","USER":"x"}`, ``, `null`,
		`{"acc":"APP","user":` + strconvQuote(auth.EncodePrincipal(auth.ServicePrincipal)) + `}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := auth.FromRequestInfo(header(s))
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) || !errors.Is(err, status.ErrPermissionDenied) {
				t.Fatalf("error %v is not an unauthenticated PERMISSION_DENIED", err)
			}
			return
		}
		if p.Via == auth.ViaService || p.Via == auth.ViaNone {
			t.Fatalf("header %q gave a %s principal", s, p.Via)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("header %q gave an invalid principal: %v", s, err)
		}
		var ri requestInfo
		if err := json.Unmarshal([]byte(s), &ri); err != nil || ri.Account != subjects.AppAccount {
			t.Fatalf("header %q without the APP account was trusted", s)
		}
	})
}
