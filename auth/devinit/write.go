package devinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeAll writes files (paths under dir) 0600, creating directories 0700.
// Without force it first checks that none exists, so it either writes all
// or changes nothing; a failed write removes the files it had created.
// With force each file is replaced atomically (temporary file + rename);
// a failed write then leaves the files before it replaced.
func writeAll(files []file, force bool) error {
	if !force {
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				return fmt.Errorf("auth init: %w: %s (use --force to replace it)", ErrExists, f.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("auth init: %w", err)
			}
		}
	}
	var created []string
	undo := func() {
		for _, p := range created {
			_ = os.Remove(p)
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
			undo()
			return fmt.Errorf("auth init: %w", err)
		}
		var err error
		if force {
			err = replaceFile(f.path, f.data)
		} else {
			err = createFile(f.path, f.data)
		}
		if err != nil {
			undo()
			return fmt.Errorf("auth init: write %s: %w", f.path, err)
		}
		if !force {
			created = append(created, f.path)
		}
	}
	return nil
}

// createFile writes a new file 0600; it fails if path exists.
func createFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return finish(f, data)
}

// replaceFile writes path 0600 through a temporary file in its directory.
func replaceFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := finish(f, data); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// finish writes data, makes the mode 0600 whatever the umask, syncs and
// closes f.
func finish(f *os.File, data []byte) error {
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(0o600)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}
