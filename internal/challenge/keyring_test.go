package challenge

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyringPersistence(t *testing.T) {
	now := newClock().Now()
	tests := []struct {
		name     string
		prepare  func(t *testing.T, path string) // before the second NewKeyring
		wantSame bool                            // the reloaded ring verifies the first ring's tokens
		wantLog  string
	}{
		{name: "reload keeps keys", prepare: func(*testing.T, string) {}, wantSame: true},
		{name: "corrupt file: fresh key, logged", prepare: func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantLog: "key file unusable"},
		{name: "bad secret: fresh key, logged", prepare: func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte(`{"version":1,"keys":[{"id":1,"created":"2026-03-01T12:00:00Z","secret":"c2hvcnQ="}]}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantLog: "key file unusable"},
		{name: "unknown version: fresh key, logged", prepare: func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte(`{"version":9,"keys":[]}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantLog: "unsupported version"},
		{name: "deleted file: fresh key", prepare: func(t *testing.T, p string) { os.Remove(p) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data", "keys.json")
			kr1 := NewKeyring(KeyringOptions{Path: path, Logger: discardLogger()}, now)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
			}
			tok := signStanding(t, kr1, now)
			tt.prepare(t, path)
			var logs bytes.Buffer
			kr2 := NewKeyring(KeyringOptions{Path: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, now)
			if got := verifyStandingWith(kr2, tok, now); got != tt.wantSame {
				t.Errorf("token from before the restart verifies = %v, want %v", got, tt.wantSame)
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), tt.wantLog)
			}
			// Whatever happened, the ring signs and verifies (fails open).
			if !verifyStandingWith(kr2, signStanding(t, kr2, now), now) {
				t.Error("reloaded ring does not verify its own token")
			}
		})
	}
}

func TestKeyringRotation(t *testing.T) {
	clk := newClock()
	kr := NewKeyring(KeyringOptions{Rotation: 24 * time.Hour, Retain: 48 * time.Hour, Logger: discardLogger()}, clk.Now())
	old := signStanding(t, kr, clk.Now())
	steps := []struct {
		name        string
		advance     time.Duration
		revoke      bool
		wantRotated bool
		wantOld     bool
	}{
		{name: "before the interval", advance: 23 * time.Hour, wantOld: true},
		{name: "rotates at the interval; previous key still verifies", advance: time.Hour, wantRotated: true, wantOld: true},
		{name: "retained", advance: 24 * time.Hour, wantRotated: true, wantOld: true},
		{name: "dropped after rotation+retain", advance: 24 * time.Hour, wantRotated: true, wantOld: false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clk.Advance(s.advance)
			rotated, err := kr.RotateIfDue(clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			if rotated != s.wantRotated {
				t.Errorf("rotated %v, want %v", rotated, s.wantRotated)
			}
			if got := verifyStandingWith(kr, old, clk.Now()); got != s.wantOld {
				t.Errorf("old token verifies = %v, want %v (keys %d)", got, s.wantOld, kr.Len())
			}
		})
	}
	t.Run("revoke drops every key", func(t *testing.T) {
		tok := signStanding(t, kr, clk.Now())
		if err := kr.Revoke(clk.Now()); err != nil {
			t.Fatal(err)
		}
		if verifyStandingWith(kr, tok, clk.Now()) || kr.Len() != 1 {
			t.Errorf("token verifies after Revoke (keys %d)", kr.Len())
		}
	})
}

// signStanding signs a standing token directly with kr's current key.
func signStanding(t *testing.T, kr *Keyring, now time.Time) string {
	t.Helper()
	k := kr.current()
	b := make([]byte, headerSize+1+4+tagSize)
	putHeader(b, kindStanding, k.id, now.Add(1000*time.Hour)) // outlives every key in these tests
	b[10] = 4
	copy(b[11:], "M-01")
	return k.seal(b, binding{site: 7})
}

func verifyStandingWith(kr *Keyring, tok string, now time.Time) bool {
	var buf [maxTokenBytes]byte
	_, ok := kr.open(tok, kindStanding, binding{site: 7}, now, 0, &buf)
	return ok
}
