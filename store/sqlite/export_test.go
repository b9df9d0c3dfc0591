package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Test-only hooks into the store's internals, for the fault tests.

// SetMaxPageCount sets PRAGMA max_page_count on the writer connection, so
// that the database cannot grow past n pages (a full disk), and returns the
// limit now in force (SQLite never lowers it below the current size).
func SetMaxPageCount(s *Store, n int64) (int64, error) {
	var got int64
	err := s.w.QueryRow(fmt.Sprintf("PRAGMA max_page_count = %d", n)).Scan(&got)
	return got, err
}

// PageCount returns the database's size in pages, as the writer sees it.
func PageCount(s *Store) (int64, error) {
	var n int64
	err := s.w.QueryRow("PRAGMA page_count").Scan(&n)
	return n, err
}

// Queued returns how many write operations wait for the writer goroutine.
func Queued(s *Store) int { return len(s.ops) }

// BlockWriter occupies the writer goroutine: it returns once the writer is
// inside a transaction running a blocking operation, and the returned func
// lets it go on. Writes queued meanwhile commit together in the next batch.
// The blocking operation writes nothing.
func BlockWriter(s *Store) (release func(), err error) {
	entered, gate, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		result <- s.write(context.Background(), func(*sql.Tx) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	select {
	case <-entered:
	case err := <-result:
		if err == nil {
			err = fmt.Errorf("blocking operation did not run")
		}
		return nil, err
	}
	return func() {
		close(gate)
		<-result
	}, nil
}
