package pipeline

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// migrationFS holds the store's versioned migrations, one folder per
// dialect (the SQL differs in the id column type only). Files are
// NNNNN_name.sql with -- +goose Up and -- +goose Down sections; goose
// applies each in its own transaction and records it in goose_db_version.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// versionTable is where goose records the applied migrations.
const versionTable = "goose_db_version"

// legacyTable is the version table of cutover's own migration runner
// (version, applied_at): a database that has it is adopted (see adopt).
const legacyTable = "schema_migrations"

// migrationLock is the PostgreSQL advisory lock key that serialises
// migrators of one schema (the second key is the schema's hash).
const migrationLock = 7262730

// migrationProvider returns goose's runner over the dialect's migrations.
func (s *Store) migrationProvider() (*goose.Provider, error) {
	dialect := database.DialectSQLite3
	if s.dialect == "postgres" {
		dialect = database.DialectPostgres
	}
	sub, err := fs.Sub(migrationFS, "migrations/"+s.dialect)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(dialect, s.db, sub, goose.WithDisableGlobalRegistry(true))
}

// Migrate applies the migrations the database does not have yet. Several
// processes may start at once: on PostgreSQL they wait for each other on
// an advisory lock of the schema; on SQLite one process owns the file.
// A database whose schema was recorded in schema_migrations is adopted
// first: its versions are copied into goose's table, then goose applies
// the rest.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.migrationProvider()
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	if s.dialect == "postgres" {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
		defer conn.Close()
		// A blocking session lock on its own connection: goose runs on
		// others, and the waiters start as soon as it is released.
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, migrationLock); err != nil {
			return fmt.Errorf("migrating: waiting for the migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, migrationLock)
	}
	if err := s.adopt(ctx); err != nil {
		return fmt.Errorf("migrating: adopting %s: %w", legacyTable, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return nil
}

// SchemaVersion is the newest migration applied and the newest embedded.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int64, err error) {
	p, err := s.migrationProvider()
	if err != nil {
		return 0, 0, err
	}
	return p.GetVersions(ctx)
}

// adopt moves the record of a database migrated by cutover's own runner
// (table schema_migrations, versions numbered like the files here) into
// goose's table, in one transaction, and drops schema_migrations. It does
// nothing to a new database or to one whose versions goose records.
func (s *Store) adopt(ctx context.Context) error {
	legacy, err := s.tableExists(ctx, legacyTable)
	if err != nil || !legacy {
		return err
	}
	if ours, err := s.tableExists(ctx, versionTable); err != nil || ours {
		return err
	}
	store, err := database.NewStore(map[string]database.Dialect{"sqlite": database.DialectSQLite3, "postgres": database.DialectPostgres}[s.dialect], versionTable)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT version FROM `+legacyTable+` ORDER BY version`)
	if err != nil {
		return err
	}
	var versions []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		versions = append(versions, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := store.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	for _, v := range append([]int64{0}, versions...) {
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+legacyTable); err != nil {
		return err
	}
	return tx.Commit()
}

// tableExists reports whether the schema in use has table name.
func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if s.dialect == "postgres" {
		q = `SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1`
	}
	var n int
	err := s.db.QueryRowContext(ctx, q, name).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return n > 0, err
}
