package pii

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of a PII field; it decides the field's mask.
type Kind string

// The kinds of PII fields.
const (
	KindEmail   Kind = "email"
	KindName    Kind = "name"
	KindPhone   Kind = "phone"
	KindAddress Kind = "address"
	KindID      Kind = "id"
	KindGeneric Kind = "generic"
)

// Kinds lists every kind.
var Kinds = []Kind{KindEmail, KindName, KindPhone, KindAddress, KindID, KindGeneric}

// ParseKind returns the kind named s. Errors name the valid kinds.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("pii: unknown kind %q; want one of email, name, phone, address, id, generic", s)
}

// Mask returns what a caller without read_pii sees of value, a field of
// kind k: enough to recognise it, never enough to recover it.
//
//	email    ada.lovelace@example.com → a***@example.com
//	name     Ada Lovelace             → A*** L***
//	phone    +44 20 7946 0958         → ***-***-0958
//	address  12 Downing St, London    → ***, London
//	id       AB123456C                → ***456C  (the last 4)
//	generic  anything                 → ***
func Mask(k Kind, value string) string {
	if value == "" {
		return ""
	}
	switch k {
	case KindEmail:
		local, domain, ok := strings.Cut(value, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
			return "***"
		}
		return firstRune(local) + "***@" + domain
	case KindName:
		parts := strings.Fields(value)
		if len(parts) == 0 {
			return "***"
		}
		for i, p := range parts {
			parts[i] = firstRune(p) + "***"
		}
		return strings.Join(parts, " ")
	case KindPhone:
		var digits []rune
		for _, r := range value {
			if unicode.IsDigit(r) {
				digits = append(digits, r)
			}
		}
		if len(digits) < 7 {
			return "***"
		}
		return "***-***-" + string(digits[len(digits)-4:])
	case KindAddress:
		if i := strings.LastIndex(value, ","); i >= 0 && strings.TrimSpace(value[i+1:]) != "" {
			return "***, " + strings.TrimSpace(value[i+1:])
		}
		return "***"
	case KindID:
		if utf8.RuneCountInString(value) <= 6 {
			return "***"
		}
		r := []rune(value)
		return "***" + string(r[len(r)-4:])
	}
	return "***"
}

func firstRune(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return ""
	}
	return string(r)
}
