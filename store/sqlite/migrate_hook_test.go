package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// MigrateFileTo brings the file at path to schema version v, as Open
// brings it to SchemaVersion: a test builds an older file with it.
func MigrateFileTo(path string, v int) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var cur int
	if err := tx.QueryRow("PRAGMA user_version").Scan(&cur); err != nil {
		return err
	}
	for ; cur < v; cur++ {
		if _, err := tx.Exec(migrations[cur]); err != nil {
			return fmt.Errorf("migrating to %d: %w", cur+1, err)
		}
		if _, err := tx.Exec("PRAGMA user_version = " + strconv.Itoa(cur+1)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
