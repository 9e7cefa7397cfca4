package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: a new file and a replaced one get the content and the
// permissions; a failed write (missing directory) leaves nothing behind.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		content string
		perm    os.FileMode
		wantErr bool
	}{
		{name: "new file", path: filepath.Join(dir, "a.json"), content: "one", perm: 0o600},
		{name: "replaced file", path: filepath.Join(dir, "a.json"), content: "two, longer", perm: 0o644},
		{name: "missing directory", path: filepath.Join(dir, "nope", "b.json"), content: "x", perm: 0o600, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(tc.path, []byte(tc.content), tc.perm)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(tc.path)
			if err != nil || string(b) != tc.content {
				t.Fatalf("content %q (%v), want %q", b, err, tc.content)
			}
			fi, _ := os.Stat(tc.path)
			if fi.Mode().Perm() != tc.perm {
				t.Errorf("perm %v, want %v", fi.Mode().Perm(), tc.perm)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only a.json (no temporary files left)", len(entries))
	}
}
