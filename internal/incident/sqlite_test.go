package incident_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/incident/storetest"
)

func openStore(t *testing.T, dir string) *incident.Store {
	t.Helper()
	s, err := incident.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) incident.Backend { return openStore(t, t.TempDir()) })
}

func TestOpenMigrations(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Create(ctx, storetest.Sample("a", "www", 0)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	raw, err := sql.Open("sqlite", filepath.Join(dir, incident.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var versions []int
	rows, err := raw.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		rows.Scan(&v)
		versions = append(versions, v)
	}
	rows.Close()
	if fmt.Sprint(versions) != "[1]" {
		t.Errorf("schema versions %v, want [1]", versions)
	}

	if st, err := os.Stat(filepath.Join(dir, incident.DBFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}

	// Reopening is idempotent and keeps the data.
	s2 := openStore(t, dir)
	if _, err := s2.Get(ctx, "a"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
	s2.Close()

	// A schema from a newer binary is refused, not written to.
	if _, err := raw.Exec(`INSERT INTO schema_migrations(version, description, applied_at) VALUES (99, 'future', 'x')`); err != nil {
		t.Fatal(err)
	}
	if _, err := incident.Open(dir); err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), incident.DBFile) {
		t.Errorf("open of a newer schema: err = %v, want a 'newer' error naming the file", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	os.MkdirAll(garbage, 0o755)
	os.WriteFile(filepath.Join(garbage, incident.DBFile), bytes.Repeat([]byte("not a database "), 400), 0o644)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	tests := []struct {
		name    string
		dir     string
		wantSub string
	}{
		{name: "corrupt database file", dir: garbage, wantSub: incident.DBFile},
		{name: "data dir is a file", dir: file, wantSub: "data dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := incident.Open(tc.dir)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantSub) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantSub)
			}
		})
	}
}
