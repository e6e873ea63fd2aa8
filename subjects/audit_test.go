package subjects_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prism-data/prism/subjects"
)

func TestAuditSubject(t *testing.T) {
	tests := []struct {
		name    string
		ns, op  string
		subject string
	}{
		{"write", "orders", "write.put", "prism.$audit.orders.write.put"},
		{"admin", "orders", "admin.ns.apply", "prism.$audit.orders.admin.ns.apply"},
		{"no namespace", "", "admin.ns.list", "prism.$audit._.admin.ns.list"},
		{"namespace named write", "write", "read.get", "prism.$audit.write.read.get"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := subjects.Audit(tt.ns, tt.op)
			if got != tt.subject {
				t.Fatalf("Audit(%q, %q) = %q, want %q", tt.ns, tt.op, got, tt.subject)
			}
			a, err := subjects.ParseAudit(got)
			if err != nil || a.Namespace != tt.ns || a.Op != tt.op {
				t.Fatalf("ParseAudit(%q) = %+v, %v", got, a, err)
			}
			if !matchesAny(subjects.AuditSubjects(), got) {
				t.Fatalf("%s is not captured by the audit stream's subjects %v", got, subjects.AuditSubjects())
			}
			// An audit subject is never a request to the gateway.
			for _, sub := range []string{subjects.AllWrites(), subjects.AllReads(), subjects.AllAdmin()} {
				if subjectMatches(sub, got) {
					t.Fatalf("%s matches the gateway's subscription %s", got, sub)
				}
			}
		})
	}
}

func TestParseAuditRejects(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		wantErr error
	}{
		{"other root", "nope.$audit.orders.write.put", subjects.ErrInvalidSubject},
		{"admin subject", "prism.$admin.ns.apply", subjects.ErrInvalidSubject},
		{"no op", "prism.$audit.orders", subjects.ErrInvalidSubject},
		{"one-token op", "prism.$audit.orders.write", subjects.ErrInvalidSubject},
		{"empty token", "prism.$audit.orders.write..put", subjects.ErrInvalidSubject},
		{"trailing dot", "prism.$audit.orders.write.put.", subjects.ErrInvalidSubject},
		{"wildcard op", "prism.$audit.orders.write.*", subjects.ErrInvalidSubject},
		{"upper-case op", "prism.$audit.orders.Write.put", subjects.ErrInvalidSubject},
		{"bad namespace", "prism.$audit.Orders.write.put", subjects.ErrInvalidNamespace},
		{"empty namespace", "prism.$audit..write.put", subjects.ErrInvalidNamespace},
		{"wildcard namespace", "prism.$audit.*.write.put", subjects.ErrInvalidNamespace},
		{"long op", "prism.$audit.orders.write." + strings.Repeat("a", subjects.MaxAuditOpLen), subjects.ErrInvalidSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := subjects.ParseAudit(tt.subject)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseAudit(%q) = %+v, %v; want %v", tt.subject, a, err, tt.wantErr)
			}
		})
	}
}

func TestAuditFilter(t *testing.T) {
	tests := []struct {
		name    string
		ns, op  string
		want    []string
		match   []string
		noMatch []string
		wantErr error
	}{
		{
			name: "everything", want: []string{"prism.$audit.*.>"},
			match: []string{subjects.Audit("orders", "write.put"), subjects.Audit("", "admin.ns.list")},
		},
		{
			name: "namespace", ns: "orders", want: []string{"prism.$audit.orders.>"},
			match:   []string{subjects.Audit("orders", "write.put")},
			noMatch: []string{subjects.Audit("users", "write.put"), subjects.Audit("", "admin.ns.list")},
		},
		{
			name: "no namespace", ns: "_", want: []string{"prism.$audit._.>"},
			match:   []string{subjects.Audit("", "admin.ns.list")},
			noMatch: []string{subjects.Audit("orders", "admin.ns.list")},
		},
		{
			name: "op prefix", op: "write", want: []string{"prism.$audit.*.write", "prism.$audit.*.write.>"},
			match:   []string{subjects.Audit("orders", "write.put"), subjects.Audit("users", "write.delete")},
			noMatch: []string{subjects.Audit("orders", "read.get"), subjects.Audit("write", "read.get"), subjects.Audit("orders", "writer.put")},
		},
		{
			name: "exact op", ns: "orders", op: "write.put", want: []string{"prism.$audit.orders.write.put", "prism.$audit.orders.write.put.>"},
			match:   []string{subjects.Audit("orders", "write.put")},
			noMatch: []string{subjects.Audit("orders", "write.delete"), subjects.Audit("orders", "write.putx")},
		},
		{name: "bad namespace", ns: "Orders", wantErr: subjects.ErrInvalidNamespace},
		{name: "wildcard op", op: "write.>", wantErr: subjects.ErrInvalidSubject},
		{name: "empty op token", op: "write.", wantErr: subjects.ErrInvalidSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subjects.AuditFilter(tt.ns, tt.op)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("AuditFilter(%q, %q) = %v, %v; want %v", tt.ns, tt.op, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("AuditFilter(%q, %q) = %v, %v; want %v", tt.ns, tt.op, got, err, tt.want)
			}
			for _, s := range tt.match {
				if !matchesAny(got, s) {
					t.Errorf("filter %v does not match %s", got, s)
				}
			}
			for _, s := range tt.noMatch {
				if matchesAny(got, s) {
					t.Errorf("filter %v matches %s", got, s)
				}
			}
		})
	}
}

func TestValidateAuditOp(t *testing.T) {
	for _, op := range []string{"write.put", "admin.ns.apply", "replay.run", "migrate.start", "read.get_many", "a.b-c"} {
		if err := subjects.ValidateAuditOp(op); err != nil {
			t.Errorf("ValidateAuditOp(%q) = %v", op, err)
		}
	}
	for _, op := range []string{"", "write", ".put", "write.", "write.p ut", "write.>", "write.*", "Write.put", "write.pät"} {
		if err := subjects.ValidateAuditOp(op); !errors.Is(err, subjects.ErrInvalidSubject) {
			t.Errorf("ValidateAuditOp(%q) = %v, want ErrInvalidSubject", op, err)
		}
	}
}

func FuzzParseAudit(f *testing.F) {
	for _, s := range []string{"prism.$audit.orders.write.put", "prism.$audit._.admin.ns.list", "prism.$audit.orders", "prism.$audit..a.b", "prism.$audit.a.b..c", "prism.$admin.ns.apply"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		a, err := subjects.ParseAudit(subject)
		if err != nil {
			if !errors.Is(err, subjects.ErrInvalidSubject) && !errors.Is(err, subjects.ErrInvalidNamespace) {
				t.Fatalf("ParseAudit(%q): error %v wraps neither sentinel", subject, err)
			}
			return
		}
		if got := subjects.Audit(a.Namespace, a.Op); got != subject {
			t.Fatalf("ParseAudit(%q) = %+v, which builds %q", subject, a, got)
		}
		if a.Namespace != "" {
			if err := subjects.ValidateNamespace(a.Namespace); err != nil {
				t.Fatalf("ParseAudit(%q) accepted namespace %q: %v", subject, a.Namespace, err)
			}
		}
		if err := subjects.ValidateAuditOp(a.Op); err != nil {
			t.Fatalf("ParseAudit(%q) accepted op %q: %v", subject, a.Op, err)
		}
		if strings.ContainsAny(subject, " \t\r\n*>") {
			t.Fatalf("ParseAudit(%q) accepted a wildcard or whitespace", subject)
		}
		if len(strings.Split(subject, ".")) < 5 {
			t.Fatalf("ParseAudit(%q) accepted a subject of fewer than five tokens", subject)
		}
		if !matchesAny(subjects.AuditSubjects(), subject) {
			t.Fatalf("ParseAudit(%q) accepted a subject the audit stream does not capture", subject)
		}
	})
}

// subjectMatches reports whether subject matches NATS filter filter
// ('*' one token, '>' the rest).
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || tok != "*" && tok != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

func matchesAny(filters []string, subject string) bool {
	return slices.ContainsFunc(filters, func(f string) bool { return subjectMatches(f, subject) })
}
