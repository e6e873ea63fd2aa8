package namespaces

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/internal/suggest"
)

// specField is one YAML field of a namespace spec, by its path from the
// top (needs.write_rps).
type specField struct {
	path string
	typ  reflect.Type
}

// yamlFields returns the YAML fields of struct type t, in declaration
// order, their paths prefixed with prefix.
func yamlFields(t reflect.Type, prefix string) []specField {
	var out []specField
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, specField{prefix + name, f.Type})
	}
	return out
}

// isSection reports whether a field of type t is a mapping of further spec
// fields (needs, kafka, postgres), not a value that decodes itself.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]())
}

// allFields returns every field path of the spec of type t, sections and
// the fields in them.
func allFields(t reflect.Type, prefix string) []string {
	var out []string
	for _, f := range yamlFields(t, prefix) {
		out = append(out, f.path)
		if isSection(f.typ) {
			out = append(out, allFields(f.typ, f.path+".")...)
		}
	}
	return out
}

// unknownField finds the first key of the namespace YAML data that is not
// a field of the spec, and returns an error that names its line and field
// path and suggests the nearest valid field; nil when every key is known
// (or data is not YAML: the decoder's error says so).
func unknownField(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	t := reflect.TypeFor[Namespace]()
	return unknownIn(doc.Content[0], t, "", allFields(t, ""))
}

// unknownIn checks the keys of mapping n against the fields of struct type
// t at path prefix; every lists all the spec's field paths, for
// suggestions.
func unknownIn(n *yaml.Node, t reflect.Type, prefix string, every []string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	fields := yamlFields(t, prefix)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		path := prefix + key.Value
		j := -1
		for k, f := range fields {
			if f.path == path {
				j = k
			}
		}
		if j < 0 {
			return fmt.Errorf("line %d: unknown field %s; %s", key.Line, path, suggestField(path, fields, every))
		}
		if isSection(fields[j].typ) {
			if err := unknownIn(val, fields[j].typ, path+".", every); err != nil {
				return err
			}
		}
	}
	return nil
}

// suggest names the field path that was most likely meant instead of
// path: the same name in another section, else the nearest spelling among
// fields (internal/suggest); else it lists fields.
func suggestField(path string, fields []specField, every []string) string {
	name := path[strings.LastIndex(path, ".")+1:]
	for _, p := range every {
		if p != path && (p == name || strings.HasSuffix(p, "."+name)) {
			return fmt.Sprintf("did you mean %s?", p)
		}
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.path
	}
	if best, ok := suggest.Nearest(path, names); ok {
		return fmt.Sprintf("did you mean %s?", best)
	}
	return "the fields here are " + strings.Join(names, ", ")
}
