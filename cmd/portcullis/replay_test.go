package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// floodLogFile writes a 20 s, 1,000 rps flood from 8.8.8.0/24 after a
// quiet minute, as a combined log named access.log.
func floodLogFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	t0 := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	line := func(at time.Duration, ip string) {
		fmt.Fprintf(&b, "%s - - [%s] \"GET / HTTP/1.1\" 200 512 \"-\" \"python-requests/2.31\"\n", ip, t0.Add(at).Format("02/Jan/2006:15:04:05 -0700"))
	}
	for s := range 60 {
		line(time.Duration(s)*time.Second, "81.2.69.1")
	}
	for s := 60; s < 80; s++ {
		for i := range 1000 {
			line(time.Duration(s)*time.Second, fmt.Sprintf("8.8.8.%d", i%200+1))
		}
	}
	name := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestReplayCommandSite(t *testing.T) {
	log := floodLogFile(t)
	tests := []struct {
		name     string
		args     []string
		wantSite string
		wantErr  string
	}{
		{name: "default", wantSite: "replay"},
		{name: "--site", args: []string{"--site", "www.example.org"}, wantSite: "www.example.org"},
		{name: "--site with a space", args: []string{"--site", "our site"}, wantErr: "invalid site name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"replay", "--data-dir", dir, "--geo", "../../testdata/geo/asn-sample.csv"}, tc.args...)
			out, err := runCmd(t, append(args, log)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			st, err := incident.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			list, err := st.List(context.Background(), incident.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Site != tc.wantSite {
				t.Fatalf("stored %d incidents, want one on %q: %+v", len(list), tc.wantSite, list)
			}
			out, err = runCmd(t, "report", "--latest", "--data-dir", dir, "--format", "md")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "“"+tc.wantSite+"”") || strings.Contains(out, "“default”") {
				t.Errorf("report does not call the site %q:\n%.600s", tc.wantSite, out)
			}
			if !strings.Contains(out, "Google LLC") {
				t.Errorf("report does not name AS15169 Google LLC")
			}
		})
	}
}
