package challenge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/atomicfile"
)

// Keyring defaults.
const (
	// DefaultRotation is how often a new signing key becomes current.
	DefaultRotation = 24 * time.Hour
	// DefaultRetain is how long a retired key keeps verifying: the longest
	// token lifetime (DefaultStandingTTL), so rotation never cuts a token
	// short; use Revoke to invalidate everything at once.
	DefaultRetain = DefaultStandingTTL
	// keySize is the secret length in bytes (the SHA-256 block is 64; 32
	// bytes is the output size RFC 2104 §3 recommends as a minimum).
	keySize = 32
	// maxKeys bounds the ring whatever the configuration.
	maxKeys = 64
	// keyFileVersion is the version of the persisted file format.
	keyFileVersion = 1
)

// KeyringOptions configures a Keyring. The zero value is an in-memory ring
// with the defaults.
type KeyringOptions struct {
	// Path is the file the keys are persisted to (created 0600, its
	// directory 0700). Empty: keys live in memory only and every restart
	// invalidates all clearance and standing cookies.
	Path string
	// Rotation is how often a fresh key becomes current; default
	// DefaultRotation (24 h).
	Rotation time.Duration
	// Retain is how long a retired key is still accepted for verification;
	// default DefaultRetain (7 days). Tokens never outlive their key.
	Retain time.Duration
	// Logger receives load/save problems. Default slog.Default().
	Logger *slog.Logger
}

// Keyring holds the HMAC-SHA-256 signing keys: the current key signs, the
// current and retired-but-retained keys verify. It is safe for concurrent
// use; lookups are lock-free (an immutable key set behind an atomic
// pointer) and allocation-free.
//
// A Keyring never fails closed: a missing, unreadable or corrupt key file is
// logged and replaced by a fresh key (visitors are challenged again, nobody
// is locked out); a file that cannot be written is logged and the ring
// carries on in memory.
type Keyring struct {
	opts KeyringOptions
	log  *slog.Logger
	mu   sync.Mutex // serialises rotation and persistence
	set  atomic.Pointer[keySet]
}

// keySet is an immutable generation of keys, current first.
type keySet struct {
	keys []*key
}

// key is one signing key with a pool of HMAC states keyed by it.
type key struct {
	id      uint32
	secret  [keySize]byte
	created time.Time
	pool    sync.Pool // of *macState
}

// macState is a reusable HMAC-SHA-256 computation plus scratch space, so
// that signing and verifying allocate nothing.
type macState struct {
	h   hash.Hash
	buf [256]byte
	sum [sha256.Size]byte
}

func newKey(id uint32, secret [keySize]byte, created time.Time) *key {
	k := &key{id: id, secret: secret, created: created}
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, k.secret[:])} }
	return k
}

// NewKeyring returns a keyring loaded from opts.Path (or fresh), rotated if
// the newest key is older than the rotation interval at now. Problems with
// the file are logged, never returned: see the Keyring doc.
func NewKeyring(opts KeyringOptions, now time.Time) *Keyring {
	if opts.Rotation <= 0 {
		opts.Rotation = DefaultRotation
	}
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	kr := &Keyring{opts: opts, log: opts.Logger.With("component", "challenge.keyring")}
	var keys []*key
	if opts.Path != "" {
		loaded, err := loadKeys(opts.Path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			kr.log.Info("no key file yet; generating a signing key", "path", opts.Path)
		case err != nil:
			kr.log.Warn("key file unusable; generating a fresh signing key (visitors will be challenged again)", "path", opts.Path, "err", err)
		default:
			keys = loaded
		}
	}
	keys = kr.prune(keys, now)
	if len(keys) == 0 || now.Sub(keys[0].created) >= opts.Rotation {
		keys = append([]*key{kr.generate(keys, now)}, keys...)
		keys = kr.prune(keys, now)
		kr.save(keys)
	}
	kr.set.Store(&keySet{keys: keys})
	return kr
}

// generate returns a new key whose id differs from every id in keys.
func (kr *Keyring) generate(keys []*key, now time.Time) *key {
	var secret [keySize]byte
	var idb [4]byte
	for {
		rand.Read(secret[:]) // never fails (Go ≥ 1.24 crashes the program instead)
		rand.Read(idb[:])
		id := binary.BigEndian.Uint32(idb[:])
		clash := false
		for _, k := range keys {
			clash = clash || k.id == id
		}
		if !clash {
			return newKey(id, secret, now)
		}
	}
}

// prune drops keys past rotation+retain at now (keys must be newest first)
// and bounds the ring to maxKeys.
func (kr *Keyring) prune(keys []*key, now time.Time) []*key {
	out := keys[:0:0]
	for i, k := range keys {
		// A key stops signing when the next one is created; it verifies for
		// Retain after that. Age from creation is an upper bound of that.
		if i == 0 || now.Sub(k.created) < kr.opts.Rotation+kr.opts.Retain {
			out = append(out, k)
		}
		if len(out) == maxKeys {
			break
		}
	}
	return out
}

// current returns the signing key.
func (kr *Keyring) current() *key { return kr.set.Load().keys[0] }

// find returns the key with id, if it is still accepted.
func (kr *Keyring) find(id uint32) *key {
	for _, k := range kr.set.Load().keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// Len reports how many keys are accepted for verification (≥ 1).
func (kr *Keyring) Len() int { return len(kr.set.Load().keys) }

// Rotate makes a fresh key current at now; the previous keys keep verifying
// for Retain. The ring is persisted when a path is configured; a write error
// is returned wrapped (the rotation itself has happened).
func (kr *Keyring) Rotate(now time.Time) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return kr.rotateLocked(now, false)
}

// RotateIfDue rotates when the current key is at least Rotation old at now,
// and prunes keys past retention. It reports whether it rotated.
func (kr *Keyring) RotateIfDue(now time.Time) (bool, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	old := kr.set.Load().keys
	if now.Sub(old[0].created) < kr.opts.Rotation {
		if pruned := kr.prune(old, now); len(pruned) != len(old) {
			kr.set.Store(&keySet{keys: pruned})
			return false, kr.save(pruned)
		}
		return false, nil
	}
	return true, kr.rotateLocked(now, false)
}

// Revoke replaces every key by a fresh one at now: every clearance and
// standing token issued so far stops verifying (an operator's "log
// everybody out", e.g. after a key leak).
func (kr *Keyring) Revoke(now time.Time) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return kr.rotateLocked(now, true)
}

func (kr *Keyring) rotateLocked(now time.Time, revoke bool) error {
	old := kr.set.Load().keys
	keys := []*key{kr.generate(old, now)}
	if !revoke {
		keys = kr.prune(append(keys, old...), now)
	}
	kr.set.Store(&keySet{keys: keys})
	return kr.save(keys)
}

// Run rotates the keys when due, checking every minute, until ctx ends.
func (kr *Keyring) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if rotated, err := kr.RotateIfDue(now); err != nil {
				kr.log.Warn("persisting signing keys failed; keys stay in memory", "err", err)
			} else if rotated {
				kr.log.Info("signing key rotated", "keys", kr.Len())
			}
		}
	}
}

// keyFile is the persisted form: JSON, secrets base64 (std encoding).
type keyFile struct {
	Version int       `json:"version"`
	Keys    []keyJSON `json:"keys"`
}

type keyJSON struct {
	ID      uint32    `json:"id"`
	Created time.Time `json:"created"`
	Secret  string    `json:"secret"`
}

// loadKeys reads a key file; keys come back newest first.
func loadKeys(path string) ([]*key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("challenge: read keys: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("challenge: parse keys %s: %w", path, err)
	}
	if f.Version != keyFileVersion {
		return nil, fmt.Errorf("challenge: keys %s: unsupported version %d", path, f.Version)
	}
	var keys []*key
	for i, kj := range f.Keys {
		raw, err := base64.StdEncoding.DecodeString(kj.Secret)
		if err != nil || len(raw) != keySize {
			return nil, fmt.Errorf("challenge: keys %s: key %d: bad secret", path, i)
		}
		var s [keySize]byte
		copy(s[:], raw)
		keys = append(keys, newKey(kj.ID, s, kj.Created))
	}
	for i := 1; i < len(keys); i++ { // insertion sort, newest first (tiny n)
		for j := i; j > 0 && keys[j].created.After(keys[j-1].created); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys, nil
}

// save writes keys atomically (temporary file, fsync, rename) with mode
// 0600. Without a path it does nothing.
func (kr *Keyring) save(keys []*key) error {
	if kr.opts.Path == "" {
		return nil
	}
	err := writeKeys(kr.opts.Path, keys)
	if err != nil {
		kr.log.Warn("cannot persist signing keys; they live in memory until the next restart", "path", kr.opts.Path, "err", err)
	}
	return err
}

func writeKeys(path string, keys []*key) error {
	f := keyFile{Version: keyFileVersion}
	for _, k := range keys {
		f.Keys = append(f.Keys, keyJSON{ID: k.id, Created: k.created.UTC(), Secret: base64.StdEncoding.EncodeToString(k.secret[:])})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("challenge: encode keys: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("challenge: key dir: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("challenge: write keys: %w", err)
	}
	return nil
}
