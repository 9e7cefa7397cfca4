package incident

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// DBFile is the store's file name inside the data directory.
const DBFile = "incidents.db"

// Store is the SQLite Backend (modernc.org/sqlite, pure Go), one file in
// the data directory. It runs in WAL mode with synchronous=FULL: every write
// method commits one transaction and returns only after the commit is on
// disk, so a crash — kill -9 or power loss — loses no incident and no
// timeline entry a call already returned for. Several processes may share
// the file (a running serve and a replay): writers wait for each other up to
// 10 s (busy_timeout), readers never block.
type Store struct {
	db   *sql.DB
	path string
}

var _ Backend = (*Store)(nil)

// Open opens (creating if needed) the store in dir and brings its schema up
// to date. A new database file is created readable by its owner only.
// Errors name the file; a schema written by a newer binary is refused.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("incident: data dir: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	// Incidents name attacking addresses: create the file owner-only (SQLite
	// gives its -wal and -shm files the same mode).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("incident: %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // take the write lock at BEGIN: no upgrade deadlocks
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("incident: %s: %w", path, err)
	}
	ctx := context.Background()
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("incident: %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("incident: %s: journal mode is %q, want wal (is the file system local?)", path, mode)
	}
	if err := migrate(ctx, db, path); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, path: path}, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Check runs SQLite's integrity check and returns an error describing the
// first problems found, if any.
func (s *Store) Check(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("incident: %s: integrity check: %w", s.path, err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("incident: %s: integrity check: %w", s.path, err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("incident: %s: integrity check: %w", s.path, err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("incident: %s: integrity check failed: %s", s.path, strings.Join(msgs, "; "))
	}
	return nil
}

// Close closes the database. Pending calls fail afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("incident: close %s: %w", s.path, err)
	}
	return nil
}

// eventDigest identifies an event by its content: the SHA-256 of its JSON
// form (encoding/json sorts map keys, so equal events give equal digests).
func eventDigest(e *Event) (digest string, body []byte, err error) {
	e.Time = e.Time.UTC()
	body, err = json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("incident: encode event: %w", err)
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16]), body, nil
}

// record returns the JSON record of in (without its timeline, times in
// UTC) and its vectors as JSON.
func record(in *Incident) (rec, vectors []byte, err error) {
	c := *in
	c.Timeline = nil
	c.Start, c.Detected, c.End = c.Start.UTC(), c.Detected.UTC(), c.End.UTC()
	if rec, err = json.Marshal(&c); err != nil {
		return nil, nil, fmt.Errorf("incident: encode %s: %w", in.ID, err)
	}
	v := in.Vectors
	if v == nil {
		v = []string{}
	}
	if vectors, err = json.Marshal(v); err != nil {
		return nil, nil, fmt.Errorf("incident: encode %s: %w", in.ID, err)
	}
	return rec, vectors, nil
}

func nullableNS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// tx runs fn in one write transaction, committed durably.
func (s *Store) tx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("incident: %s: begin: %w", op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("incident: %s: commit: %w", op, err)
	}
	return nil
}

// appendEvents inserts the events not yet stored for id, in order.
func appendEvents(ctx context.Context, tx *sql.Tx, id string, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events WHERE incident_id = ?`, id).Scan(&seq); err != nil {
		return fmt.Errorf("incident: %s: timeline: %w", id, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO events(incident_id, seq, time_ns, digest, event) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("incident: %s: timeline: %w", id, err)
	}
	defer stmt.Close()
	for i := range events {
		e := events[i]
		digest, body, err := eventDigest(&e)
		if err != nil {
			return err
		}
		res, err := stmt.ExecContext(ctx, id, seq+1, e.Time.UnixNano(), digest, string(body))
		if err != nil {
			return fmt.Errorf("incident: %s: append event: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			seq++
		}
	}
	return nil
}

// Create implements Backend.
func (s *Store) Create(ctx context.Context, in *Incident) error {
	if err := validate(in); err != nil {
		return err
	}
	rec, vectors, err := record(in)
	if err != nil {
		return err
	}
	return s.tx(ctx, "create "+in.ID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO incidents(id, site, start_ns, detected_ns, end_ns, vectors, record, updated_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			in.ID, in.Site, in.Start.UnixNano(), in.Detected.UnixNano(), nullableNS(in.End), string(vectors), string(rec), time.Now().UnixNano())
		if err != nil {
			return fmt.Errorf("incident: create %s: %w", in.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("incident: create %s: %w", in.ID, ErrExists)
		}
		return appendEvents(ctx, tx, in.ID, in.Timeline)
	})
}

// Update implements Backend.
func (s *Store) Update(ctx context.Context, in *Incident) error {
	if err := validate(in); err != nil {
		return err
	}
	return s.update(ctx, "update", in)
}

func (s *Store) update(ctx context.Context, op string, in *Incident) error {
	rec, vectors, err := record(in)
	if err != nil {
		return err
	}
	return s.tx(ctx, op+" "+in.ID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE incidents SET site = ?, start_ns = ?, detected_ns = ?, end_ns = ?, vectors = ?, record = ?, updated_ns = ?
			WHERE id = ?`,
			in.Site, in.Start.UnixNano(), in.Detected.UnixNano(), nullableNS(in.End), string(vectors), string(rec), time.Now().UnixNano(), in.ID)
		if err != nil {
			return fmt.Errorf("incident: %s %s: %w", op, in.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("incident: %s %s: %w", op, in.ID, ErrNotFound)
		}
		return appendEvents(ctx, tx, in.ID, in.Timeline)
	})
}

// CloseIncident implements Backend.
func (s *Store) CloseIncident(ctx context.Context, in *Incident) error {
	if err := validate(in); err != nil {
		return err
	}
	if in.End.IsZero() {
		return fmt.Errorf("incident: close %s without an end time: %w", in.ID, ErrInvalid)
	}
	return s.update(ctx, "close", in)
}

// AppendEvent implements Backend.
func (s *Store) AppendEvent(ctx context.Context, id string, e Event) error {
	return s.tx(ctx, "append event to "+id, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM incidents WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("incident: append event to %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("incident: append event to %s: %w", id, err)
		}
		return appendEvents(ctx, tx, id, []Event{e})
	})
}

// Get implements Backend.
func (s *Store) Get(ctx context.Context, id string) (*Incident, error) {
	var rec string
	err := s.db.QueryRowContext(ctx, `SELECT record FROM incidents WHERE id = ?`, id).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("incident: get %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("incident: get %s: %w", id, err)
	}
	in, err := decodeRecord(id, rec)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT event FROM events WHERE incident_id = ? ORDER BY time_ns, seq`, id)
	if err != nil {
		return nil, fmt.Errorf("incident: get %s timeline: %w", id, err)
	}
	defer rows.Close()
	in.Timeline = []Event{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("incident: get %s timeline: %w", id, err)
		}
		var e Event
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, fmt.Errorf("incident: get %s: corrupt timeline entry: %w", id, err)
		}
		in.Timeline = append(in.Timeline, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident: get %s timeline: %w", id, err)
	}
	return in, nil
}

func decodeRecord(id, rec string) (*Incident, error) {
	in := new(Incident)
	if err := json.Unmarshal([]byte(rec), in); err != nil {
		return nil, fmt.Errorf("incident: %s: corrupt record: %w", id, err)
	}
	in.Timeline = nil
	return in, nil
}

// List implements Backend.
func (s *Store) List(ctx context.Context, f Filter) ([]*Incident, error) {
	var where []string
	var args []any
	if f.Site != "" {
		where, args = append(where, "site = ?"), append(args, f.Site)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "start_ns >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "start_ns < ?"), append(args, f.Until.UnixNano())
	}
	if f.Open {
		where = append(where, "end_ns IS NULL")
	}
	if f.Closed {
		where = append(where, "end_ns IS NOT NULL")
	}
	if f.Vector != "" {
		where, args = append(where, "EXISTS (SELECT 1 FROM json_each(incidents.vectors) WHERE json_each.value = ?)"), append(args, f.Vector)
	}
	q := `SELECT id, record FROM incidents`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY start_ns DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("incident: list: %w", err)
	}
	defer rows.Close()
	var out []*Incident
	for rows.Next() {
		var id, rec string
		if err := rows.Scan(&id, &rec); err != nil {
			return nil, fmt.Errorf("incident: list: %w", err)
		}
		in, err := decodeRecord(id, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident: list: %w", err)
	}
	return out, nil
}

// Latest implements Backend.
func (s *Store) Latest(ctx context.Context, site string) (*Incident, error) {
	q, args := `SELECT id FROM incidents ORDER BY start_ns DESC, id DESC LIMIT 1`, []any(nil)
	if site != "" {
		q, args = `SELECT id FROM incidents WHERE site = ? ORDER BY start_ns DESC, id DESC LIMIT 1`, []any{site}
	}
	var id string
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("incident: latest for site %q: %w", site, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("incident: latest: %w", err)
	}
	return s.Get(ctx, id)
}

// Delete implements Backend.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.tx(ctx, "delete "+id, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM incidents WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("incident: delete %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("incident: delete %s: %w", id, ErrNotFound)
		}
		return nil
	})
}

// Prune implements Backend. Space freed in the file is reused by later
// writes (the file does not shrink).
func (s *Store) Prune(ctx context.Context, olderThan time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, "prune", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM incidents WHERE end_ns IS NOT NULL AND end_ns < ?`, olderThan.UnixNano())
		if err != nil {
			return fmt.Errorf("incident: prune: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
