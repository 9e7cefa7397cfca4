package incident

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one schema step. Steps are applied in order, each in the
// same transaction as its row in schema_migrations, so a crash leaves the
// schema at a whole version.
type migration struct {
	version     int
	description string
	sql         string
}

// migrations is the schema history. Append only: never edit a released
// step, add a new one.
//
// The incident record is stored as JSON in incidents.record so that fields
// added to Incident need no migration; the columns next to it are copies of
// what List filters and orders on. Timeline events are rows of their own so
// that appending one is a small, durable insert; digest identifies an
// event by its content (see eventDigest).
var migrations = []migration{
	{
		version:     1,
		description: "incidents and timeline events",
		sql: `
CREATE TABLE incidents (
	id          TEXT PRIMARY KEY,
	site        TEXT NOT NULL,
	start_ns    INTEGER NOT NULL,
	detected_ns INTEGER NOT NULL,
	end_ns      INTEGER,
	vectors     TEXT NOT NULL DEFAULT '[]',
	record      TEXT NOT NULL,
	updated_ns  INTEGER NOT NULL
) STRICT;
CREATE INDEX incidents_by_start ON incidents(start_ns);
CREATE INDEX incidents_by_site_start ON incidents(site, start_ns);
CREATE INDEX incidents_by_end ON incidents(end_ns);
CREATE TABLE events (
	incident_id TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	time_ns     INTEGER NOT NULL,
	digest      TEXT NOT NULL,
	event       TEXT NOT NULL,
	PRIMARY KEY (incident_id, seq),
	UNIQUE (incident_id, digest)
) STRICT;
CREATE INDEX events_by_time ON events(incident_id, time_ns, seq);
`,
	},
}

// migrate brings the schema to the latest version. A database written by a
// newer binary (a version this one does not know) is refused rather than
// written to.
func migrate(ctx context.Context, db *sql.DB, name string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version     INTEGER PRIMARY KEY,
	description TEXT NOT NULL,
	applied_at  TEXT NOT NULL
) STRICT`); err != nil {
		return fmt.Errorf("incident: %s: create schema_migrations: %w", name, err)
	}
	for {
		done, err := migrateStep(ctx, db, name)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next missing migration in its own transaction and
// reports whether the schema was already current.
func migrateStep(ctx context.Context, db *sql.DB, name string) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("incident: %s: %w", name, err)
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return false, fmt.Errorf("incident: %s: read schema version: %w", name, err)
	}
	latest := migrations[len(migrations)-1].version
	if current > latest {
		return false, fmt.Errorf("incident: %s: schema version %d is newer than this binary's %d; use a newer portcullis", name, current, latest)
	}
	if current == latest {
		return true, nil
	}
	m := migrations[current] // versions are 1..n in order
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("incident: %s: migration %d (%s): %w", name, m.version, m.description, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, description, applied_at) VALUES (?, ?, ?)`,
		m.version, m.description, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return false, fmt.Errorf("incident: %s: record migration %d: %w", name, m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("incident: %s: commit migration %d: %w", name, m.version, err)
	}
	return false, nil
}
