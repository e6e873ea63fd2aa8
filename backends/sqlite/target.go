package sqlite

import "path/filepath"

// TargetPath is the SQLite file of projection target target of namespace
// ns under a Prism data directory: <dataDir>/sqlite/<ns>.db for the target
// named "sqlite" (a namespace's first SQLite target) or "", and
// <dataDir>/sqlite/<ns>.<target>.db for any other. prism serve, migrations
// and prism replay all find a target's file by it.
func TargetPath(dataDir, ns, target string) string {
	name := ns + ".db"
	if target != "" && target != "sqlite" {
		name = ns + "." + target + ".db"
	}
	return filepath.Join(dataDir, "sqlite", name)
}
