package netset

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadEvent is one OnReload call.
type reloadEvent struct {
	set *Set
	bad []LineError
	err error
}

// writeAtomic replaces path with content via rename, as list updaters do.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitReload waits for the next OnReload call; the timeout only bounds a
// failing test, nothing sleeps.
func waitReload(t *testing.T, ch <-chan reloadEvent) reloadEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s")
		return reloadEvent{}
	}
}

func newTestWatcher(t *testing.T, files map[string]string) (*Watcher, string, <-chan reloadEvent, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		writeAtomic(t, p, content)
		paths = append(paths, p)
	}
	ch := make(chan reloadEvent, 16)
	var logBuf bytes.Buffer
	w, err := NewWatcher(slog.New(slog.NewTextHandler(&logBuf, nil)), paths, WatcherOptions{
		Debounce: 20 * time.Millisecond,
		OnReload: func(s *Set, bad []LineError, err error) { ch <- reloadEvent{s, bad, err} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w, dir, ch, &logBuf
}

func TestWatcherInitialLoadUnion(t *testing.T) {
	w, _, _, logBuf := newTestWatcher(t, map[string]string{
		"firehol.netset": fireholSample,
		"drop.txt":       dropTextSample,
		"drop_v6.json":   dropJSONSample + "junk\n",
	})
	set := w.Set()
	// 3 + 2 + 2 entries, 1.10.16.0/20 listed twice.
	if set.Len() != 6 {
		t.Errorf("Len() = %d, want 6: %v", set.Len(), set.Prefixes())
	}
	for _, a := range []string{"192.0.2.9", "1.10.16.1", "2001:db8::5", "203.0.113.1", "198.51.100.17"} {
		if !set.Contains(netip.MustParseAddr(a)) {
			t.Errorf("set does not contain %s", a)
		}
	}
	if !strings.Contains(logBuf.String(), "bad list line") || !strings.Contains(logBuf.String(), "drop_v6.json") {
		t.Errorf("bad line not logged: %s", logBuf)
	}
}

func TestWatcherReloadsOnChange(t *testing.T) {
	w, dir, ch, _ := newTestWatcher(t, map[string]string{"deny.txt": "192.0.2.0/24\n"})
	old := w.Set()
	writeAtomic(t, filepath.Join(dir, "deny.txt"), "198.51.100.0/24\n2001:db8::/32\n")
	ev := waitReload(t, ch)
	if ev.err != nil {
		t.Fatalf("reload failed: %v", ev.err)
	}
	got := w.Set()
	if got != ev.set || got == old {
		t.Fatal("Set() did not switch to the reloaded set")
	}
	if got.Contains(netip.MustParseAddr("192.0.2.1")) || !got.Contains(netip.MustParseAddr("198.51.100.1")) || got.Len() != 2 {
		t.Errorf("reloaded set = %v", got.Prefixes())
	}
	if !old.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("old set was mutated")
	}
}

func TestWatcherKeepsOldSetOnFailure(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, path string)
		wantErr error
	}{
		{
			name:    "html error page instead of a list",
			change:  func(t *testing.T, p string) { writeAtomic(t, p, "<html>\n<body>502 Bad Gateway</body>\n</html>\n") },
			wantErr: ErrRejectedFile,
		},
		{
			name:    "half the entries bad",
			change:  func(t *testing.T, p string) { writeAtomic(t, p, "192.0.2.0/24\nnope\n") },
			wantErr: ErrRejectedFile,
		},
		{
			name: "file removed",
			change: func(t *testing.T, p string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: fs.ErrNotExist,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, dir, ch, logBuf := newTestWatcher(t, map[string]string{"deny.txt": "203.0.113.0/24\n"})
			old := w.Set()
			tt.change(t, filepath.Join(dir, "deny.txt"))
			ev := waitReload(t, ch)
			if !errors.Is(ev.err, tt.wantErr) {
				t.Fatalf("reload error = %v, want %v", ev.err, tt.wantErr)
			}
			if w.Set() != old || ev.set != old {
				t.Error("failed reload replaced the set")
			}
			if !strings.Contains(logBuf.String(), "keeping previous set") {
				t.Errorf("failure not logged: %s", logBuf)
			}
			// A good file afterwards is picked up again.
			writeAtomic(t, filepath.Join(dir, "deny.txt"), "10.0.0.0/8\n")
			for ev = waitReload(t, ch); ev.err != nil; ev = waitReload(t, ch) {
			}
			if !w.Set().Contains(netip.MustParseAddr("10.1.2.3")) {
				t.Errorf("recovered set = %v", w.Set().Prefixes())
			}
		})
	}
}

func TestWatcherManualReload(t *testing.T) {
	w, dir, ch, _ := newTestWatcher(t, map[string]string{"a.txt": "192.0.2.0/24\n"})
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, ch); ev.err != nil || ev.set.Len() != 1 {
		t.Fatalf("manual reload: %+v", ev)
	}
	if err := os.Remove(filepath.Join(dir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Reload of missing file = %v, want ErrNotExist", err)
	}
	if !w.Set().Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("set lost after failed manual reload")
	}
}

func TestNewWatcherErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	writeAtomic(t, bad, "junk\n")
	tests := []struct {
		name    string
		paths   []string
		wantErr error
	}{
		{name: "no files", paths: nil},
		{name: "missing file", paths: []string{filepath.Join(dir, "missing.txt")}, wantErr: fs.ErrNotExist},
		{name: "rejected file", paths: []string{bad}, wantErr: ErrRejectedFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWatcher(nil, tt.paths, WatcherOptions{})
			if err == nil {
				w.Close()
				t.Fatal("NewWatcher succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "netset:") {
				t.Errorf("err %q lacks component prefix", err)
			}
		})
	}
}

// TestWatcherDebounce drives the event loop with synthetic events in fake time
// (testing/synctest): a burst of events yields one reload, Debounce after the
// last event; events that change nothing reload nothing.
func TestWatcherDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "l.txt")
		writeAtomic(t, path, "192.0.2.0/24\n")
		var reloads atomic.Int32
		w, err := newWatcher(slog.New(slog.DiscardHandler), []string{path}, WatcherOptions{
			OnReload: func(*Set, []LineError, error) { reloads.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
		events, errs := make(chan fsnotify.Event), make(chan error)
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.run(events, errs) }()
		defer w.Close()

		writeAtomic(t, path, "198.51.100.0/24\n")
		start := time.Now()
		for range 5 { // five events 50ms apart: one reload, 200ms after the last
			events <- fsnotify.Event{Name: path, Op: fsnotify.Write}
			time.Sleep(50 * time.Millisecond) // fake time inside the bubble
		}
		synctest.Wait()
		if n := reloads.Load(); n != 0 {
			t.Fatalf("reloaded %d times during the burst", n)
		}
		time.Sleep(DefaultDebounce - 50*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if n := reloads.Load(); n != 0 {
			t.Fatalf("reloaded before debounce elapsed (%v)", time.Since(start))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := reloads.Load(); n != 1 {
			t.Fatalf("reloads = %d after debounce, want 1", n)
		}
		if !w.Set().Contains(netip.MustParseAddr("198.51.100.1")) {
			t.Error("new content not loaded")
		}

		// Chmod alone is ignored; unrelated events without a file change
		// cause no reload.
		events <- fsnotify.Event{Name: path, Op: fsnotify.Chmod}
		events <- fsnotify.Event{Name: filepath.Join(filepath.Dir(path), "other"), Op: fsnotify.Create}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := reloads.Load(); n != 1 {
			t.Fatalf("reloads = %d after no-op events, want 1", n)
		}

		// A watch error triggers a check too.
		writeAtomic(t, path, "10.0.0.0/8\n")
		errs <- errors.New("queue overflow")
		time.Sleep(time.Second)
		synctest.Wait()
		if n := reloads.Load(); n != 2 || !w.Set().Contains(netip.MustParseAddr("10.0.0.1")) {
			t.Fatalf("reloads = %d after watch error, want 2", n)
		}

		// A rejected file is reported once, not again on every unrelated
		// event in its directory; a fix is picked up.
		writeAtomic(t, path, "<html>oops</html>\n")
		for range 2 {
			events <- fsnotify.Event{Name: path + ".unrelated", Op: fsnotify.Create}
			time.Sleep(time.Second)
			synctest.Wait()
			if n := reloads.Load(); n != 3 {
				t.Fatalf("reloads = %d with a rejected file, want 3", n)
			}
		}
		if !w.Set().Contains(netip.MustParseAddr("10.0.0.1")) {
			t.Fatal("rejected file replaced the set")
		}
		writeAtomic(t, path, "10.0.0.0/8\n192.0.2.0/24\n")
		events <- fsnotify.Event{Name: path, Op: fsnotify.Create}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := reloads.Load(); n != 4 || !w.Set().Contains(netip.MustParseAddr("192.0.2.1")) {
			t.Fatalf("reloads = %d after fixing the file, want 4", n)
		}
	})
}

func BenchmarkWatcherSet(b *testing.B) {
	path := filepath.Join(b.TempDir(), "l.txt")
	if err := os.WriteFile(path, []byte("192.0.2.0/24\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	w, err := newWatcher(slog.New(slog.DiscardHandler), []string{path}, WatcherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		w.Set().Contains(a)
	}
}
