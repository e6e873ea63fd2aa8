package node

import (
	"fmt"

	"github.com/prism-data/prism/namespaces"
)

// SeedFromDir is the seed of prism serve --config dir: every namespace
// file (*.yaml) of dir, applied by "prism serve --config dir"; an empty
// dir is the demo namespace of a new data directory. It fails when dir
// holds no namespace file or one does not load.
func SeedFromDir(dir string) (Seed, error) {
	if dir == "" {
		return Seed{Namespaces: []namespaces.Namespace{DemoNamespace}, OnlyIfNew: true, By: "prism serve (demo)"}, nil
	}
	nss, err := namespaces.LoadNamespaces(dir)
	if err != nil {
		return Seed{}, err
	}
	if len(nss) == 0 {
		return Seed{}, fmt.Errorf("--config %s: no namespace files (*.yaml) found", dir)
	}
	return Seed{Namespaces: nss, By: "prism serve --config " + dir}, nil
}
