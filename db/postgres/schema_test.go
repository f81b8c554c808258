package postgres_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/confab/confab/db"
	"github.com/confab/confab/db/postgres/pgtest"
	"github.com/confab/confab/db/sqlq"
)

// column is what both schemas must agree on about a column: types differ
// by dialect (INTEGER and BIGINT, BLOB and BYTEA), names and nullability
// must not.
type column struct {
	table, name string
	notNull     bool
}

func scanColumn(r sqlq.Row) (column, error) {
	var c column
	return c, r.Scan(&c.table, &c.name, &c.notNull)
}

func scanName(r sqlq.Row) (string, error) {
	var s string
	return s, r.Scan(&s)
}

// TestSchema_SameInBothStores migrates a new SQLite file and a new
// PostgreSQL schema and compares their tables, columns (by name and
// nullability) and indexes. The message search index is each dialect's
// own and left out: SQLite's FTS5 tables (messages_fts*), PostgreSQL's
// message_search and its GIN index message_search_search. Their mark,
// search_indexed, is the same in both.
func TestSchema_SameInBothStores(t *testing.T) {
	ctx := context.Background()
	lite, err := db.Open(ctx, filepath.Join(t.TempDir(), "confab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg := mustOpen(t, pgtest.URL(t))

	// Every query orders its rows: the lists then compare as they are.
	liteRows, err := lite.DB().QueryContext(ctx, `
		SELECT t.name, c.name, c."notnull" OR c.pk > 0
		FROM sqlite_schema t JOIN pragma_table_info(t.name) c
		WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite_%' AND t.name <> 'goose_db_version'
		  AND t.name NOT LIKE 'messages_fts%'
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	liteColumns, err := sqlq.Collect(liteRows, 0, scanColumn)
	liteRows.Close()
	if err != nil {
		t.Fatal(err)
	}
	pgRows, err := pg.Pool().Query(ctx, `
		SELECT table_name::text, column_name::text, is_nullable = 'NO' FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> 'goose_db_version'
		  AND table_name <> 'message_search'
		ORDER BY table_name COLLATE "C", column_name COLLATE "C"`)
	if err != nil {
		t.Fatal(err)
	}
	pgColumns, err := sqlq.Collect(pgRows, 0, scanColumn)
	pgRows.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(liteColumns, pgColumns) || len(liteColumns) == 0 {
		t.Errorf("columns differ:\nSQLite     %v\nPostgreSQL %v", liteColumns, pgColumns)
	}

	// Indexes made by CREATE INDEX, not the ones behind a key or a
	// UNIQUE column.
	if liteRows, err = lite.DB().QueryContext(ctx, `
		SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	liteIndexes, err := sqlq.Collect(liteRows, 0, scanName)
	liteRows.Close()
	if err != nil {
		t.Fatal(err)
	}
	pgRows, err = pg.Pool().Query(ctx, `
		SELECT i.indexname::text FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename <> 'goose_db_version'
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = current_schema()::regnamespace)
		  -- SQLite's UNIQUE on username_key serves its prefix search;
		  -- PostgreSQL's LIKE needs text_pattern_ops for it.
		  AND i.indexname <> 'users_username_prefix'
		  AND i.indexname <> 'message_search_search'
		ORDER BY i.indexname COLLATE "C"`)
	if err != nil {
		t.Fatal(err)
	}
	pgIndexes, err := sqlq.Collect(pgRows, 0, scanName)
	pgRows.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(liteIndexes, pgIndexes) || len(liteIndexes) == 0 {
		t.Errorf("indexes differ:\nSQLite     %v\nPostgreSQL %v", liteIndexes, pgIndexes)
	}
}
