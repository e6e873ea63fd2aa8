package namespaces

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// LoadNamespaces reads every *.yaml and *.yml file of dir, in name order,
// each holding exactly one namespace. Decoding is strict: an unknown field,
// a second document in a file, an invalid namespace or a name declared twice
// is an error that names the file. Consistency defaults to Eventual.
func LoadNamespaces(dir string) ([]Namespace, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load namespaces: %w", err)
	}
	var out []Namespace
	seen := make(map[string]string) // name -> file
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		ns, err := loadNamespaceFile(path)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[ns.Name]; dup {
			return nil, fmt.Errorf("load namespaces: %s: namespace %s is already declared in %s", path, ns.Name, prev)
		}
		seen[ns.Name] = path
		out = append(out, ns)
	}
	return out, nil
}

// LoadNamespaceFile reads the one namespace of the YAML file path, strictly
// and validated like LoadNamespaces.
func LoadNamespaceFile(path string) (Namespace, error) { return loadNamespaceFile(path) }

func loadNamespaceFile(path string) (Namespace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Namespace{}, fmt.Errorf("load namespaces: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var ns Namespace
	if err := dec.Decode(&ns); err != nil {
		if errors.Is(err, io.EOF) {
			return Namespace{}, fmt.Errorf("load namespaces: %s: empty file; declare one namespace", path)
		}
		return Namespace{}, fmt.Errorf("load namespaces: %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Namespace{}, fmt.Errorf("load namespaces: %s: more than one YAML document; declare one namespace per file", path)
	}
	if err := ns.Validate(); err != nil {
		return Namespace{}, fmt.Errorf("load namespaces: %s: %w", path, err)
	}
	return ns.WithDefaults(), nil
}
