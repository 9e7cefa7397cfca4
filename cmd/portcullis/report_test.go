package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportCommand: report finds the store where serve keeps it by default
// (./portcullis-data, as "incidents" does), or in --data-dir, and says what
// is wrong otherwise.
func TestReportCommand(t *testing.T) {
	dir := incidentsStore(t)
	cwd := t.TempDir()
	if err := os.Symlink(dir, filepath.Join(cwd, "portcullis-data")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{name: "default data directory", args: []string{"report", "--site", "members", "--latest"}, want: "20261129T210636Z-members-1a2b"},
		{name: "explicit data directory", args: []string{"report", "--data-dir", dir, "20261129T200000Z-203.0.113.20-05b0"}, want: "the server at 203.0.113.20"},
		{name: "no store there", args: []string{"report", "--data-dir", t.TempDir(), "--latest"}, wantErr: "no incident store in"},
		{name: "id and --latest", args: []string{"report", "--latest", "20261129T210636Z-members-1a2b"}, wantErr: "not both"},
		{name: "unknown id", args: []string{"report", "nope"}, wantErr: "no such incident"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmd(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%.400s", tc.want, out)
			}
		})
	}
}
