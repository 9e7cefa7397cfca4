// Package atomicfile writes a file so that a reader, or the next start
// after a crash, sees either the old content or the new, never a part:
// the bytes go to a temporary file in the same directory, which is
// synced, given its permissions, and renamed over the target (rename is
// atomic within a file system, POSIX rename(2)).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path's content with b, created with perm (e.g. 0o600 for
// secrets and operator data). The directory must exist. On error the
// target is untouched and no temporary file is left. Errors are wrapped
// with the "atomicfile:" prefix.
func Write(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("atomicfile: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return nil
}
