package devmongo

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB itself uses
)

// FerretDB v1's SQLite backend looks documents up by _id with
// `_ferretdb_sjson->'$._id' = ?` but indexes `_ferretdb_sjson->"_id"`.
// SQLite uses an index on an expression only for the same expression, so
// every lookup, update and delete by _id scans the whole table: in
// make bench, finding the newest post of 15,000 took 50 ms, and publishing
// slowed as the collections grew. The index below is the one its queries
// can use. FerretDB neither lists nor manages it (it lives outside its
// metadata) and SQLite drops it with the table.
const idIndexSuffix = "_postflow_id"

// idIndexer adds that index to every collection of every database file in
// dir. Collections appear whenever a client first writes to one, so it
// runs at start and then every interval.
type idIndexer struct {
	dir string
	dbs map[string]*sql.DB
}

func (x *idIndexer) run(ctx context.Context, interval time.Duration, logf func(error)) {
	defer x.close()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := x.indexAll(ctx); err != nil && ctx.Err() == nil {
			logf(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (x *idIndexer) indexAll(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return err
	}
	for _, f := range files {
		db, ok := x.dbs[f]
		if !ok {
			if db, err = sql.Open("sqlite", "file:"+f+"?_pragma=busy_timeout(10000)"); err != nil {
				return fmt.Errorf("mongo: open %s: %w", filepath.Base(f), err)
			}
			db.SetMaxOpenConns(1)
			x.dbs[f] = db
		}
		if err := indexFile(ctx, db); err != nil {
			return fmt.Errorf("mongo: index _id in %s: %w", filepath.Base(f), err)
		}
	}
	return nil
}

// indexFile creates the missing indexes of one database file.
func indexFile(ctx context.Context, db *sql.DB) error {
	var ferret int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = '_ferretdb_collections'`).Scan(&ferret); err != nil || ferret == 0 {
		return err // A file FerretDB has only begun to create.
	}
	rows, err := db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || ?)
		  AND EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'table' AND m.name = c.table_name)`, idIndexSuffix)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+idIndexSuffix, t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (x *idIndexer) close() {
	for _, db := range x.dbs {
		db.Close()
	}
}
