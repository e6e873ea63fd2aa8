package namespaces

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration that YAML spells as a Go duration string
// ("720h", "90m", "0"). Units of days are not accepted: write 720h, not 30d.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 720h: %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration; write it like 720h or 90m", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON implements json.Marshaler: a string such as "720h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler: a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"720h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 720h or 90m", s)
	}
	*d = Duration(v)
	return nil
}

// String returns the duration as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// Names is a list of names (owners, fields), YAML and JSON a sequence of
// strings. It is kept comparable (unlike a slice) so that Namespace stays
// comparable with ==.
type Names struct{ joined string }

// namesSep separates names in Names.joined; YAML scalars of one line
// cannot contain it.
const namesSep = "\x00"

// NewNames returns the list of names.
func NewNames(names ...string) Names { return Names{strings.Join(names, namesSep)} }

// IsZero reports whether the list is empty.
func (o Names) IsZero() bool { return o.joined == "" }

// List returns the names, nil for none.
func (o Names) List() []string {
	if o.joined == "" {
		return nil
	}
	return strings.Split(o.joined, namesSep)
}

// set checks names and stores them.
func (o *Names) set(names []string) error {
	for _, name := range names {
		if strings.Contains(name, namesSep) {
			return fmt.Errorf("%q contains a NUL byte", name)
		}
	}
	*o = NewNames(names...)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (o *Names) UnmarshalYAML(n *yaml.Node) error {
	var names []string
	if err := n.Decode(&names); err != nil {
		return fmt.Errorf("line %d: want a list of names: %w", n.Line, err)
	}
	if err := o.set(names); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (o Names) MarshalYAML() (any, error) { return o.List(), nil }

// MarshalJSON implements json.Marshaler: an array of strings.
func (o Names) MarshalJSON() ([]byte, error) {
	l := o.List()
	if l == nil {
		l = []string{}
	}
	return json.Marshal(l)
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *Names) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("want a list of names: %w", err)
	}
	return o.set(names)
}
