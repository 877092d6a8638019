// Package history keeps what each nightly run measured, in an embedded
// SQLite database (pure Go, no cgo), and fits growth trends to it: how
// many bytes a day a store grows and when it will reach its limit.
//
// It also keeps the notice state of the nightly job: for each mailbox,
// when its owner was told that messages older than some cutoff would be
// removed (see [DB.RecordNotice]).
//
// # Concurrency
//
// A [DB] is safe for concurrent use by one process. Several processes may
// read while one writes (SQLite's locking, with a busy timeout); the
// nightly job serialises writers with its run lock.
package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS samples (
	path     TEXT    NOT NULL,  -- the mbox file or Maildir folder
	store    TEXT    NOT NULL,  -- what the limit applies to
	at       INTEGER NOT NULL,  -- the run's time, Unix seconds
	bytes    INTEGER NOT NULL,
	messages INTEGER NOT NULL,
	limit_bytes INTEGER NOT NULL DEFAULT 0, -- the store's limit then
	PRIMARY KEY (path, at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_store ON samples (store, at);
CREATE INDEX IF NOT EXISTS samples_at ON samples (at);
CREATE TABLE IF NOT EXISTS notices (
	path    TEXT    NOT NULL,   -- the mailbox the notice covered
	sent_at INTEGER NOT NULL,   -- when it was sent, Unix seconds
	cutoff  INTEGER NOT NULL,   -- messages dated before this were announced
	kind    TEXT    NOT NULL,   -- what it announced: removal or report
	PRIMARY KEY (path, sent_at, kind)
) WITHOUT ROWID;
`

// DB is the history database.
type DB struct {
	db *sql.DB
}

// Open opens (creating it and its tables if needed) the database at path.
// The directory must exist.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, false)
}

// OpenReadOnly opens an existing database for reading; it creates
// nothing and fails when the file is missing.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, true)
}

func open(ctx context.Context, path string, ro bool) (*DB, error) {
	q := url.Values{}
	// A rollback journal (the default) rather than WAL, so that a reader
	// never needs to write the directory; busy_timeout lets a reader wait
	// for a writer's commit rather than fail.
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if ro {
		q.Set("mode", "ro")
	}
	dsn := (&url.URL{Scheme: "file", Opaque: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and a single
	// connection keeps the pragmas and avoids SQLITE_BUSY between our own
	// connections.
	db.SetMaxOpenConns(1)
	d := &DB{db: db}
	if err := d.init(ctx, ro); err != nil {
		db.Close()
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	return d, nil
}

func (d *DB) init(ctx context.Context, ro bool) error {
	var v int
	if err := d.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("database schema version %d is newer than this mailkeep's (%d)", v, schemaVersion)
	}
	if ro {
		if v == 0 {
			return errors.New("not a mailkeep history database (empty or missing)")
		}
		return nil
	}
	if _, err := d.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	_, err := d.db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion))
	return err
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Sample is one mailbox's measurement in one run.
type Sample struct {
	Path     string
	Store    string
	Bytes    int64
	Messages int
	// Limit is the store's limit at the time (a Maildir++ quota, or the
	// configured limit); 0 when unknown.
	Limit int64
}

// Record stores the samples of the run at at, in one transaction. A
// sample already recorded for the same path and time is replaced, so a
// run that was interrupted can be repeated with the same --now.
func (d *DB) Record(ctx context.Context, at time.Time, samples []Sample) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit
	st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO samples (path, store, at, bytes, messages, limit_bytes) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	defer st.Close()
	for _, s := range samples {
		store := s.Store
		if store == "" {
			store = s.Path
		}
		if _, err := st.ExecContext(ctx, s.Path, store, at.Unix(), s.Bytes, s.Messages, s.Limit); err != nil {
			return fmt.Errorf("record history for %s: %w", s.Path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	return nil
}

// Prune deletes samples and notices from before the instant before and
// returns how many rows went. The latest notice of each mailbox and kind
// is kept however old: it is what allows its removals.
func (d *DB) Prune(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, q := range []string{
		`DELETE FROM samples WHERE at < ?`,
		`DELETE FROM notices WHERE sent_at < ? AND sent_at < (SELECT MAX(sent_at) FROM notices n WHERE n.path = notices.path AND n.kind = notices.kind)`,
	} {
		r, err := d.db.ExecContext(ctx, q, before.Unix())
		if err != nil {
			return n, fmt.Errorf("prune history: %w", err)
		}
		c, _ := r.RowsAffected()
		n += c
	}
	return n, nil
}

// Point is a mailbox's or a store's size at one run.
type Point struct {
	At       time.Time
	Bytes    int64
	Messages int
	Limit    int64 // the store's limit then; 0 when unknown
}

// Series returns the samples of the mailbox at path, oldest first; with
// last > 0 only the last ones.
func (d *DB) Series(ctx context.Context, path string, last int) ([]Point, error) {
	return d.series(ctx, `SELECT at, bytes, messages, limit_bytes FROM samples WHERE path = ? ORDER BY at DESC`, path, last)
}

// StoreSeries returns the sizes of the store (the sum over its folders)
// at each run, oldest first; with last > 0 only the last ones.
func (d *DB) StoreSeries(ctx context.Context, store string, last int) ([]Point, error) {
	return d.series(ctx, `SELECT at, SUM(bytes), SUM(messages), MAX(limit_bytes) FROM samples WHERE store = ? GROUP BY at ORDER BY at DESC`, store, last)
}

func (d *DB) series(ctx context.Context, q, key string, last int) ([]Point, error) {
	if last > 0 {
		q += fmt.Sprintf(" LIMIT %d", last)
	}
	rows, err := d.db.QueryContext(ctx, q, key)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", key, err)
	}
	defer rows.Close()
	var pts []Point
	for rows.Next() {
		var at, b, l int64
		var m int
		if err := rows.Scan(&at, &b, &m, &l); err != nil {
			return nil, fmt.Errorf("read history of %s: %w", key, err)
		}
		pts = append(pts, Point{At: time.Unix(at, 0), Bytes: b, Messages: m, Limit: l})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", key, err)
	}
	// Newest first from the query (for LIMIT); oldest first out.
	for i, j := 0, len(pts)-1; i < j; i, j = i+1, j-1 {
		pts[i], pts[j] = pts[j], pts[i]
	}
	return pts, nil
}

// IsStore reports whether path is recorded as a store (a Maildir root or
// an mbox file) rather than only as a folder of one.
func (d *DB) IsStore(ctx context.Context, path string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM samples WHERE store = ? LIMIT 1)`, path).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read history of %s: %w", path, err)
	}
	return n > 0, nil
}

// Notice records that the owner of the mailbox at Path was told, at
// SentAt, about its messages dated before Cutoff: that they will be
// removed (Kind [KindRemoval]) or that a report-only policy selects them
// ([KindReport]). Only a removal notice allows a removal.
type Notice struct {
	Path   string
	SentAt time.Time
	Cutoff time.Time
	Kind   string
}

// Notice kinds.
const (
	KindRemoval = "removal"
	KindReport  = "report"
)

// RecordNotice stores n. Record a notice only once it was sent: a notice
// recorded but not sent would let mail go unannounced, while one sent but
// not recorded (a crash in between) is merely sent again.
func (d *DB) RecordNotice(ctx context.Context, n Notice) error {
	kind := n.Kind
	if kind == "" {
		kind = KindRemoval
	}
	_, err := d.db.ExecContext(ctx, `INSERT OR REPLACE INTO notices (path, sent_at, cutoff, kind) VALUES (?, ?, ?, ?)`,
		n.Path, n.SentAt.Unix(), n.Cutoff.Unix(), kind)
	if err != nil {
		return fmt.Errorf("record notice for %s: %w", n.Path, err)
	}
	return nil
}

// Notices returns the notices recorded for the mailbox at path, oldest
// first.
func (d *DB) Notices(ctx context.Context, path string) ([]Notice, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT sent_at, cutoff, kind FROM notices WHERE path = ? ORDER BY sent_at, kind`, path)
	if err != nil {
		return nil, fmt.Errorf("read notices of %s: %w", path, err)
	}
	defer rows.Close()
	var ns []Notice
	for rows.Next() {
		var s, c int64
		var k string
		if err := rows.Scan(&s, &c, &k); err != nil {
			return nil, fmt.Errorf("read notices of %s: %w", path, err)
		}
		ns = append(ns, Notice{Path: path, SentAt: time.Unix(s, 0), Cutoff: time.Unix(c, 0), Kind: k})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notices of %s: %w", path, err)
	}
	return ns, nil
}

// Matured returns the latest removal notice among ns sent at or before
// the instant by (now minus the notice period), or nil: the notice whose
// cutoff a removal may use.
func Matured(ns []Notice, by time.Time) *Notice {
	var m *Notice
	for i := range ns {
		n := &ns[i]
		if n.Kind == KindRemoval && !n.SentAt.After(by) && (m == nil || n.SentAt.After(m.SentAt)) {
			m = n
		}
	}
	return m
}

// Pending reports whether ns holds a notice of one of kinds (any kind
// when none is given) sent after the instant since: the owner was told
// recently and is not to be told again yet.
func Pending(ns []Notice, since time.Time, kinds ...string) bool {
	for _, n := range ns {
		if n.SentAt.After(since) && (len(kinds) == 0 || slices.Contains(kinds, n.Kind)) {
			return true
		}
	}
	return false
}
