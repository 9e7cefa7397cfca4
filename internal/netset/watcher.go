package netset

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a [Watcher] waits after the last change event in
// a watched directory before it reloads.
const DefaultDebounce = 200 * time.Millisecond

// ErrRejectedFile marks a list file that was read but had at least half of
// its entries unparseable: most likely not a list at all, such as an HTML
// error page saved by a failed download.
var ErrRejectedFile = errors.New("list file rejected")

// WatcherOptions tune a [Watcher]. The zero value is usable.
type WatcherOptions struct {
	// Debounce is the quiet time after the last file event before a reload;
	// 0 means DefaultDebounce.
	Debounce time.Duration
	// OnReload, if set, is called after every load attempt (initial load
	// excluded) from the reloading goroutine: set is the Set now in use (the
	// old one when err != nil), bad the unparseable lines of the files read,
	// err why the load failed. It must not block for long.
	OnReload func(set *Set, bad []LineError, err error)
}

// Watcher holds a [Set] built from the union of a fixed list of list files
// and rebuilds it when one of them changes. Readers call [Watcher.Set], which
// never blocks and never returns nil. A reload that fails (a file missing or
// unreadable, or rejected with [ErrRejectedFile]) keeps the previous Set and
// is reported through the logger and WatcherOptions.OnReload.
//
// Changes are noticed with fsnotify on the files' directories, so editors'
// rename-over saves and Kubernetes ConfigMap symlink swaps are seen: after any
// event in a watched directory has been quiet for the debounce time, the
// files are stat'ed and reloaded if any changed (device/inode, size or mtime).
type Watcher struct {
	paths []string
	log   *slog.Logger
	opts  WatcherOptions
	fsw   *fsnotify.Watcher

	cur atomic.Pointer[Set]

	mu     sync.Mutex    // serialises loads and guards infos and failed
	infos  []os.FileInfo // files as last loaded
	failed []os.FileInfo // files as stat'ed before the last failed load

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewWatcher loads paths (at least one) into a Set and starts watching their
// directories. It fails, with an error prefixed "netset:", when a file cannot
// be loaded or a directory cannot be watched. Lines that cannot be parsed are
// logged at warning level on logger (nil means slog.Default()). Call Close to
// stop watching.
func NewWatcher(logger *slog.Logger, paths []string, opts WatcherOptions) (*Watcher, error) {
	w, err := newWatcher(logger, paths, opts)
	if err != nil {
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("netset: watch: %w", err)
	}
	var dirs []string
	for _, p := range w.paths {
		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
			if err := fsw.Add(d); err != nil {
				_ = fsw.Close()
				return nil, fmt.Errorf("netset: watch %s: %w", d, err)
			}
		}
	}
	w.fsw = fsw
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.run(fsw.Events, fsw.Errors)
	}()
	return w, nil
}

// newWatcher builds a Watcher and loads its files, without watching.
func newWatcher(logger *slog.Logger, paths []string, opts WatcherOptions) (*Watcher, error) {
	if len(paths) == 0 {
		return nil, errors.New("netset: watcher needs at least one file")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	w := &Watcher{log: logger.With("component", "netset"), opts: opts, done: make(chan struct{})}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("netset: %w", err)
		}
		w.paths = append(w.paths, abs)
	}
	if _, _, err := w.load(); err != nil {
		return nil, err
	}
	return w, nil
}

// Set returns the Set currently in use. It is safe to call from any goroutine
// and never returns nil.
func (w *Watcher) Set() *Set { return w.cur.Load() }

// Reload reads all files now, whether or not they changed, and swaps in the
// new Set. On failure the current Set is kept and the error (prefixed
// "netset:") is returned, logged and passed to OnReload.
func (w *Watcher) Reload() error {
	_, err := w.reload(true)
	return err
}

// Close stops watching and waits for the watching goroutine to end. The last
// Set stays readable. Close is idempotent.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.done)
		if w.fsw != nil {
			err = w.fsw.Close()
		}
		w.wg.Wait()
	})
	return err
}

// run is the event loop: it coalesces events until Debounce passes without
// one, then reloads if a file changed.
func (w *Watcher) run(events <-chan fsnotify.Event, errs <-chan error) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(w.opts.Debounce)
		case err, ok := <-errs:
			if !ok {
				return
			}
			w.log.Warn("file watch error; reloading to be safe", "err", err)
			timer.Reset(w.opts.Debounce)
		case <-timer.C:
			_, _ = w.reload(false)
		}
	}
}

// reload loads the files (only if one changed, unless force) and reports the
// outcome. It returns whether a load was attempted.
func (w *Watcher) reload(force bool) (bool, error) {
	w.mu.Lock()
	if !force && !w.changedLocked() {
		w.mu.Unlock()
		return false, nil
	}
	w.mu.Unlock()
	bad, n, err := w.load()
	set := w.cur.Load()
	if err != nil {
		w.log.Error("list reload failed; keeping previous set", "err", err, "prefixes", set.Len())
	} else {
		w.log.Info("lists reloaded", "files", len(w.paths), "prefixes", set.Len(), "entries", n, "bad_lines", len(bad))
	}
	if w.opts.OnReload != nil {
		w.opts.OnReload(set, bad, err)
	}
	return true, err
}

// changedLocked reports whether any file differs both from when it was last
// loaded and from when a load last failed, so that a bad file is not re-read
// (and re-logged) on every unrelated event in its directory.
func (w *Watcher) changedLocked() bool {
	now := w.snapshot()
	return !sameSnapshot(now, w.infos) && !sameSnapshot(now, w.failed)
}

// snapshot stats every file; a file that cannot be stat'ed is nil.
func (w *Watcher) snapshot() []os.FileInfo {
	out := make([]os.FileInfo, len(w.paths))
	for i, p := range w.paths {
		if fi, err := os.Stat(p); err == nil {
			out[i] = fi
		}
	}
	return out
}

// sameSnapshot reports whether a and b describe the same files (device and
// inode, size, mtime), missing files matching missing files.
func sameSnapshot(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch {
		case a[i] == nil || b[i] == nil:
			if a[i] != b[i] {
				return false
			}
		case !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()):
			return false
		}
	}
	return true
}

// load reads every file and, if all are usable, publishes the union as the
// current Set. It returns the bad lines and the number of entries read.
func (w *Watcher) load() ([]LineError, int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var (
		all   []netip.Prefix
		bad   []LineError
		infos = make([]os.FileInfo, len(w.paths))
		n     int
		pre   = w.snapshot() // before reading: a change during the read is seen later
	)
	for i, p := range w.paths {
		prefixes, fileBad, fi, err := loadFile(p)
		bad = append(bad, fileBad...)
		for _, le := range fileBad {
			w.log.Warn("bad list line", "file", le.File, "line", le.Line, "text", le.Text, "err", le.Err)
		}
		if err != nil {
			w.failed = pre
			return bad, n, err
		}
		infos[i] = fi
		n += len(prefixes)
		all = append(all, prefixes...)
	}
	w.infos, w.failed = infos, nil
	w.cur.Store(New(all...))
	return bad, n, nil
}

// loadFile parses one list file and returns its prefixes, bad lines and the
// FileInfo it had when opened.
func loadFile(path string) ([]netip.Prefix, []LineError, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("netset: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("netset: %w", err)
	}
	prefixes, bad, st, err := parseList(f, path)
	if err != nil {
		return nil, bad, nil, err
	}
	if st.Bad > 0 && 2*st.Bad >= st.Entries {
		return nil, bad, nil, fmt.Errorf("netset: %s: %w: %d of %d entries unparseable", path, ErrRejectedFile, st.Bad, st.Entries)
	}
	return prefixes, bad, fi, nil
}
