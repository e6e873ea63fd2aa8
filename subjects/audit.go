package subjects

import (
	"fmt"
	"strings"
)

// The audit stream (package auth/audit) captures one record per data
// access on
//
//	prism.$audit.<ns>.<op...>
//
// where <ns> is the namespace, or AuditNoNamespace for an operation on no
// namespace (ns.list), and <op...> is the operation's dotted name, at
// least two tokens: its kind and its verb, e.g. write.put, read.get,
// admin.ns.apply, replay.run, migrate.start. Two tokens at least make
// every audit subject five tokens or more, so that none can match the
// gateway's four-token prism.*.write.* and prism.*.read.* subscriptions,
// whatever the namespace is called.

// AuditToken is the second token of audit subjects. '$' is not allowed in
// a namespace name, so no namespace's subjects can collide with them.
const AuditToken = "$audit"

// AuditStream is the JetStream stream of audit records, in Prism's
// account.
const AuditStream = "PRISM_AUDIT"

// AuditNoNamespace is the namespace token of the audit subject of an
// operation on no namespace. It is not a valid namespace name, so it
// cannot be mistaken for one.
const AuditNoNamespace = "_"

// MaxAuditOpLen is the longest audit operation name.
const MaxAuditOpLen = 128

const auditPrefix = Root + "." + AuditToken + "."

// Audit is the subject of the audit record of operation op on namespace
// ns ("" for none), e.g. Audit("orders", "write.put") is
// prism.$audit.orders.write.put and Audit("", "ns.list") is
// prism.$audit._.ns.list. It does not validate its arguments; see
// ValidateAuditOp.
func Audit(ns, op string) string {
	if ns == "" {
		ns = AuditNoNamespace
	}
	return auditPrefix + ns + "." + op
}

// AuditSubjects are the subjects of the audit stream.
func AuditSubjects() []string { return []string{auditPrefix + ">"} }

// AuditFilter returns the filter subjects of the audit records of
// namespace ns whose operation is op or starts with op's tokens: op
// "write" matches write.put and write.delete, op "write.put" matches
// write.put. ns "" matches every namespace, AuditNoNamespace the
// operations on none; op "" matches every operation. It returns an error
// wrapping ErrInvalidNamespace or ErrInvalidSubject for a namespace or an
// operation prefix no audit subject can have.
func AuditFilter(ns, op string) ([]string, error) {
	nsTok := ns
	switch ns {
	case "":
		nsTok = "*"
	case AuditNoNamespace:
	default:
		if err := ValidateNamespace(ns); err != nil {
			return nil, err
		}
	}
	if op == "" {
		return []string{auditPrefix + nsTok + ".>"}, nil
	}
	if err := validateAuditOp(op, 1); err != nil {
		return nil, err
	}
	exact := auditPrefix + nsTok + "." + op
	return []string{exact, exact + ".>"}, nil
}

// ValidateAuditOp reports whether op can name an audited operation: at
// most MaxAuditOpLen characters, two or more dot-separated tokens of
// lower-case ASCII letters, digits, '_' and '-'. It returns an error
// wrapping ErrInvalidSubject otherwise.
func ValidateAuditOp(op string) error { return validateAuditOp(op, 2) }

func validateAuditOp(op string, minTokens int) error {
	if op == "" || len(op) > MaxAuditOpLen {
		return fmt.Errorf("%w: audit operation %q must be 1 to %d characters", ErrInvalidSubject, op, MaxAuditOpLen)
	}
	tokens := 1
	start := 0
	for i := 0; i <= len(op); i++ {
		if i == len(op) || op[i] == '.' {
			if i == start {
				return fmt.Errorf("%w: audit operation %q has an empty token", ErrInvalidSubject, op)
			}
			if i < len(op) {
				tokens++
			}
			start = i + 1
			continue
		}
		c := op[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: audit operation %q: only a-z, 0-9, '_', '-' and '.' between tokens are allowed", ErrInvalidSubject, op)
		}
	}
	if tokens < minTokens {
		return fmt.Errorf("%w: audit operation %q must be <kind>.<verb>, e.g. write.put", ErrInvalidSubject, op)
	}
	return nil
}

// AuditAddress is a parsed audit subject.
type AuditAddress struct {
	// Namespace is the namespace, "" for an operation on no namespace.
	Namespace string
	// Op is the operation, e.g. "write.put".
	Op string
}

// ParseAudit parses prism.$audit.<ns>.<op...>, the inverse of Audit: the
// namespace must be a valid name or AuditNoNamespace, the operation pass
// ValidateAuditOp. Errors wrap ErrInvalidSubject or ErrInvalidNamespace.
func ParseAudit(subject string) (AuditAddress, error) {
	rest, ok := strings.CutPrefix(subject, auditPrefix)
	if !ok {
		return AuditAddress{}, fmt.Errorf("%w: %q is not prism.$audit.<namespace>.<op>", ErrInvalidSubject, subject)
	}
	ns, op, ok := strings.Cut(rest, ".")
	if !ok {
		return AuditAddress{}, fmt.Errorf("%w: %q has no operation", ErrInvalidSubject, subject)
	}
	if ns == AuditNoNamespace {
		ns = ""
	} else if err := ValidateNamespace(ns); err != nil {
		return AuditAddress{}, err
	}
	if err := ValidateAuditOp(op); err != nil {
		return AuditAddress{}, err
	}
	return AuditAddress{Namespace: ns, Op: op}, nil
}
