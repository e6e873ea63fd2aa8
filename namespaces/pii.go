package namespaces

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/pii"
)

// PIIPayload, among a timeseries namespace's PII fields, is the events'
// payload (the other names are tags).
const PIIPayload = "payload"

// PIITagPrefix begins the reserved tag keys of a timeseries namespace: the
// gateway stores the sealed value of PII tag t in tag PIITagPrefix+t, so
// no caller may write or search a tag key that begins with it, and no
// field may be named so.
const PIITagPrefix = "~pii."

// validateTimeSeriesPII checks what is particular to the fields (tag
// keys) and PII of a timeseries namespace: no field under the reserved
// prefix, and no tag named PIIPayload when pii declares the payload (the
// name would mean both).
func (n Namespace) validateTimeSeriesPII(fields []string) error {
	for i, f := range fields {
		if strings.HasPrefix(f, PIITagPrefix) {
			return fmt.Errorf("fields[%d]: %q begins with %q, which is reserved for the sealed values of PII tags; rename the tag", i, f, PIITagPrefix)
		}
	}
	if _, ok := n.PII.Kind(PIIPayload); ok && slices.Contains(fields, PIIPayload) {
		return fmt.Errorf("fields: a tag named %q is ambiguous in a timeseries namespace whose pii names %q, which means the event payload; rename the tag", PIIPayload, PIIPayload)
	}
	return nil
}

// PIIFields names the fields that hold personal data, each with its kind
// (pii.Kind), which decides how it is masked. YAML and JSON take either a
// list of field names, each of kind generic:
//
//	pii: [email, nick]
//
// or a mapping of field to kind:
//
//	pii: {email: email, nick: name}
//
// It is kept comparable (unlike a map) so that Namespace stays comparable
// with ==. The zero value declares no PII.
type PIIFields struct {
	// joined is "field=kind" pairs, in declared order, separated by namesSep.
	joined string
}

// PIIField is one declared PII field.
type PIIField struct {
	Name string
	Kind pii.Kind
}

// NewPIIFields returns the declaration of fields, in order.
func NewPIIFields(fields ...PIIField) PIIFields {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Name + "=" + string(f.Kind)
	}
	return PIIFields{strings.Join(parts, namesSep)}
}

// GenericPII declares names as PII fields of kind generic.
func GenericPII(names ...string) PIIFields {
	fields := make([]PIIField, len(names))
	for i, n := range names {
		fields[i] = PIIField{Name: n, Kind: pii.KindGeneric}
	}
	return NewPIIFields(fields...)
}

// IsZero reports whether no field is declared.
func (p PIIFields) IsZero() bool { return p.joined == "" }

// Fields returns the declared fields in order, nil for none.
func (p PIIFields) Fields() []PIIField {
	if p.joined == "" {
		return nil
	}
	parts := strings.Split(p.joined, namesSep)
	out := make([]PIIField, len(parts))
	for i, part := range parts {
		at := strings.LastIndexByte(part, '=')
		out[i].Name, out[i].Kind = part[:at], pii.Kind(part[at+1:])
	}
	return out
}

// List returns the field names, nil for none.
func (p PIIFields) List() []string {
	fields := p.Fields()
	if fields == nil {
		return nil
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Name
	}
	return out
}

// Kind returns the kind of field name, and whether it is a PII field.
func (p PIIFields) Kind(name string) (pii.Kind, bool) {
	for _, f := range p.Fields() {
		if f.Name == name {
			return f.Kind, true
		}
	}
	return "", false
}

// allGeneric reports whether every field is of kind generic: such a
// declaration is written back as a list.
func (p PIIFields) allGeneric() bool {
	for _, f := range p.Fields() {
		if f.Kind != pii.KindGeneric {
			return false
		}
	}
	return true
}

// set checks fields and stores them.
func (p *PIIFields) set(fields []PIIField) error {
	for i, f := range fields {
		if strings.Contains(f.Name, namesSep) || strings.Contains(string(f.Kind), namesSep) {
			return fmt.Errorf("pii[%d]: %q contains a NUL byte", i, f.Name)
		}
		if _, err := pii.ParseKind(string(f.Kind)); err != nil {
			return fmt.Errorf("pii.%s: %w", f.Name, err)
		}
		if slices.IndexFunc(fields, func(o PIIField) bool { return o.Name == f.Name }) != i {
			return fmt.Errorf("pii: %q is declared twice", f.Name)
		}
	}
	*p = NewPIIFields(fields...)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler: a list of names or a mapping
// of name to kind.
func (p *PIIFields) UnmarshalYAML(n *yaml.Node) error {
	var fields []PIIField
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return fmt.Errorf("line %d: want a list of field names or a mapping of field to kind: %w", n.Line, err)
		}
		for _, name := range names {
			fields = append(fields, PIIField{Name: name, Kind: pii.KindGeneric})
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var name, kind string
			if err := n.Content[i].Decode(&name); err != nil {
				return fmt.Errorf("line %d: want a field name: %w", n.Content[i].Line, err)
			}
			if err := n.Content[i+1].Decode(&kind); err != nil {
				return fmt.Errorf("line %d: want the kind of %s (one of %s): %w", n.Content[i+1].Line, name, joinNames(pii.Kinds), err)
			}
			fields = append(fields, PIIField{Name: name, Kind: pii.Kind(kind)})
		}
	default:
		return fmt.Errorf("line %d: want a list of field names or a mapping of field to kind", n.Line)
	}
	if err := p.set(fields); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler: a list when every field is
// generic, otherwise a mapping in declared order.
func (p PIIFields) MarshalYAML() (any, error) {
	if p.allGeneric() {
		return p.List(), nil
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range p.Fields() {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: f.Name},
			&yaml.Node{Kind: yaml.ScalarNode, Value: string(f.Kind)})
	}
	return m, nil
}

// MarshalJSON implements json.Marshaler: an array of names when every
// field is generic, otherwise an object of name to kind.
func (p PIIFields) MarshalJSON() ([]byte, error) {
	if p.allGeneric() {
		l := p.List()
		if l == nil {
			l = []string{}
		}
		return json.Marshal(l)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range p.Fields() {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Name)
		v, _ := json.Marshal(string(f.Kind))
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// UnmarshalJSON implements json.Unmarshaler: an array of names or an
// object of name to kind (in the object's order).
func (p *PIIFields) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err == nil {
		return p.set(GenericPII(names...).Fields())
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("want a list of field names or an object of field to kind")
	}
	var fields []PIIField
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("pii: %w", err)
		}
		name, _ := tok.(string)
		var kind string
		if err := dec.Decode(&kind); err != nil {
			return fmt.Errorf("pii.%s: want a kind (one of %s): %w", name, joinNames(pii.Kinds), err)
		}
		fields = append(fields, PIIField{Name: name, Kind: pii.Kind(kind)})
	}
	return p.set(fields)
}

// Redactions are how a PII field is shown to a caller without read_pii.
const (
	// RedactMask shows the mask of the field's kind (pii.Mask); the default.
	RedactMask = "mask"
	// RedactOmit leaves the field out of the reply.
	RedactOmit = "omit"
)

// Redactions lists the valid values of Namespace.PIIRedaction.
var Redactions = []string{RedactMask, RedactOmit}
