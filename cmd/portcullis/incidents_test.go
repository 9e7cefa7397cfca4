package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// incidentsStore writes three incidents to a fresh data directory: a closed
// HTTP flood on "members", an open one on "www", and a closed SYN flood on
// an address.
func incidentsStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := incident.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 29, 21, 6, 36, 0, time.UTC)
	ctx := context.Background()
	for _, in := range []*incident.Incident{
		{ID: "20261129T210636Z-members-1a2b", Site: "members", Start: t0, Detected: t0.Add(2 * time.Second), End: t0.Add(2 * time.Minute),
			Vectors: []string{"http_flood", "cache_busting"}, PeakRPS: 18680.4, Requests: 1692636},
		{ID: "20261129T213000Z-www-1a2c", Site: "www", Start: t0.Add(24 * time.Minute), Detected: t0.Add(24*time.Minute + time.Second),
			Vectors: []string{"distributed_flood"}, PeakRPS: 950, Requests: 40000},
		{ID: "20261129T200000Z-203.0.113.20-05b0", Site: "203.0.113.20", Start: t0.Add(-time.Hour), Detected: t0.Add(-time.Hour), End: t0.Add(-59 * time.Minute),
			Vectors: []string{"syn_flood"}, PeakPPS: 29385, Packets: 37841},
	} {
		if err := st.Create(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestIncidentsCommand(t *testing.T) {
	dir := incidentsStore(t)
	tests := []struct {
		name    string
		args    []string
		want    []string // lines (or fragments) in order
		wantNot []string
		wantErr string
	}{
		{
			name: "table, newest first",
			args: []string{"incidents", "--data-dir", dir},
			want: []string{
				"ID", "SITE", "START (UTC)", "END (UTC)", "STATE", "VECTORS", "PEAK RPS", "REQUESTS",
				"20261129T213000Z-www-1a2c", "www", "2026-11-29 21:30:36", "-", "open", "distributed_flood", "950", "40000",
				"20261129T210636Z-members-1a2b", "members", "2026-11-29 21:06:36", "2026-11-29 21:08:36", "closed", "http_flood,cache_busting", "18680", "1692636",
				"20261129T200000Z-203.0.113.20-05b0", "syn_flood",
			},
		},
		{
			name:    "one site",
			args:    []string{"incidents", "--data-dir", dir, "--site", "members"},
			want:    []string{"20261129T210636Z-members-1a2b"},
			wantNot: []string{"www-1a2c", "203.0.113.20"},
		},
		{
			name: "no incidents for a site",
			args: []string{"incidents", "--data-dir", dir, "--site", "nope"},
			want: []string{"no incidents"},
		},
		{
			name:    "no store",
			args:    []string{"incidents", "--data-dir", t.TempDir()},
			wantErr: "no incident store",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmd(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output contains %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestIncidentsCommandJSON(t *testing.T) {
	dir := incidentsStore(t)
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, rows []incidentRow)
	}{
		{
			name: "all",
			args: []string{"incidents", "--data-dir", dir, "--json"},
			check: func(t *testing.T, rows []incidentRow) {
				if len(rows) != 3 || rows[0].ID != "20261129T213000Z-www-1a2c" {
					t.Fatalf("rows %+v", rows)
				}
				if rows[0].State != "open" || rows[0].End != nil {
					t.Errorf("open incident: %+v", rows[0])
				}
				m := rows[1]
				if m.State != "closed" || m.End == nil || !m.End.Equal(time.Date(2026, 11, 29, 21, 8, 36, 0, time.UTC)) ||
					m.PeakRPS != 18680.4 || m.Requests != 1692636 || len(m.Vectors) != 2 {
					t.Errorf("closed incident: %+v", m)
				}
				if p := rows[2]; p.PeakPPS != 29385 || p.Packets != 37841 {
					t.Errorf("packet incident: %+v", p)
				}
			},
		},
		{
			name: "none",
			args: []string{"incidents", "--data-dir", dir, "--json", "--site", "nope"},
			check: func(t *testing.T, rows []incidentRow) {
				if rows == nil || len(rows) != 0 {
					t.Errorf("rows %+v, want an empty array", rows)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmd(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			var rows []incidentRow
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			tc.check(t, rows)
		})
	}
}
