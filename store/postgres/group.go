package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit of the fast path's statements.
//
// Each fast statement is a whole write, and on a busy server the commit
// that ends it (the round trip, the transaction's start and end, the wait
// for the WAL to reach the disk) costs several times the statement itself.
// So statements of concurrent calls, for different users, share a commit.
// A call that finds fewer than maxFlushers batches in flight sends its
// statement at once, alone, as before. Statements that arrive while
// maxFlushers batches are in flight queue; when a batch completes, its
// flusher (now a goroutine, so that the call it carried returns) sends all
// of them as the next batch: one pipeline, which PostgreSQL runs as one
// implicit transaction. Under load, batches grow to fit it.
//
// The statements of a batch are sorted by user, so two batches (of this
// store or another) lock the users' rows in the same order and cannot
// deadlock each other. One statement that fails aborts its whole batch, and
// nothing of it is written: a stale one (staleCode), a duplicate ID, a
// deadlock with some other transaction. Then that statement's call gets its
// error, as if it had been sent alone, and the others are sent again
// together, so that only its own failure reaches each call.

const (
	maxFlushers = 2  // batches in flight at once
	maxBatch    = 64 // statements per batch
)

// errAlone tells a call that its batch was rolled back, or never sent, for
// no fault of any of its statements, and its statement must be sent alone.
var errAlone = errors.New("budget/postgres: batch rolled back; statement to be sent alone")

// group queues fast statements for the next batch.
type group struct {
	mu       sync.Mutex
	pending  []*fastWrite
	flushers int // batches being sent, up to maxFlushers

	// Counts of batches sent, statements in them, and batches rolled back,
	// for tests and benchmarks.
	batches, statements, rolledBack atomic.Int64
}

// fastWrite is one fast statement waiting for its commit.
type fastWrite struct {
	ctx  context.Context
	user string
	sql  string
	args []any
	err  error         // the outcome, set before done is closed
	done chan struct{} // closed once err is set
}

// commitFast sends w's statement, alone or in a batch, and returns nil once
// it has committed, the statement's own error when it failed, errAlone
// when its batch was rolled back for no fault of its statements, or the
// error that ended the batch. When w.ctx ends first it returns its error,
// and the statement may still commit.
func (s *Store) commitFast(w *fastWrite) error {
	g := &s.group
	g.mu.Lock()
	g.pending = append(g.pending, w)
	if g.flushers < maxFlushers {
		g.flushers++
		batch := g.take()
		g.mu.Unlock()
		s.flush(batch)
		s.handOff()
	} else {
		g.mu.Unlock()
	}
	select {
	case <-w.done:
	case <-w.ctx.Done():
		select {
		case <-w.done: // both: the outcome is known
		default:
			return w.ctx.Err()
		}
	}
	return w.err
}

// take removes the next batch from pending; g.mu is held.
func (g *group) take() []*fastWrite {
	n := min(len(g.pending), maxBatch)
	batch := slices.Clone(g.pending[:n])
	clear(g.pending[:n])
	g.pending = append(g.pending[:0], g.pending[n:]...)
	return batch
}

// handOff ends a flusher's turn: statements that queued meanwhile are sent
// by a goroutine, so that the call that sent the last batch returns now.
func (s *Store) handOff() {
	g := &s.group
	g.mu.Lock()
	if len(g.pending) == 0 {
		g.flushers--
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	go func() {
		for {
			g.mu.Lock()
			if len(g.pending) == 0 {
				g.flushers--
				g.mu.Unlock()
				return
			}
			batch := g.take()
			g.mu.Unlock()
			s.flush(batch)
		}
	}()
}

// flush sends a batch and reports its outcome to each of its statements.
func (s *Store) flush(batch []*fastWrite) {
	live := batch[:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.finish(err) // not sent: nothing written
			continue
		}
		live = append(live, w)
	}
	slices.SortFunc(live, func(a, b *fastWrite) int { return cmp.Compare(a.user, b.user) })
	for len(live) > 0 {
		failed, open, err := s.send(live)
		s.group.batches.Add(1)
		s.group.statements.Add(int64(len(live)))
		if s.batchSize != nil {
			s.batchSize.Record(context.Background(), int64(len(live)), s.batchOpts...)
		}
		var pe *pgconn.PgError
		switch {
		case err == nil || len(live) == 1:
		case errors.As(err, &pe) && open && failed >= 0:
			// Statement failed failed and the session lives on: the
			// server rolled the batch back there. The error is that
			// statement's own; the others are sent again.
			s.group.rolledBack.Add(1)
			s.log.Debug("budget/postgres: a statement failed and rolled its group commit back; the others are sent again",
				"batch_size", len(live), "sqlstate", pe.Code)
			live[failed].finish(err)
			live = slices.Delete(live, failed, failed+1)
			continue
		case (errors.As(err, &pe) && open) || pgconn.SafeToRetry(err):
			// Rolled back by a failure of none of the statements, or
			// never sent: nothing was written; each is sent alone.
			s.group.rolledBack.Add(1)
			s.log.Warn("budget/postgres: a group commit was rolled back, or never sent, for no statement's failure; each statement is sent alone",
				"batch_size", len(live), "err", err)
			err = errAlone
		}
		// Otherwise the session ended, and the batch may have died
		// anywhere: its calls fail, as a lone statement's would.
		for _, w := range live {
			w.finish(err)
		}
		return
	}
}

// send sends the statements on a connection of the pool: one alone, on its
// call's context; more as one pipeline, on a context that is not any one
// call's: the batch belongs to every call in it, and is not cut short when
// the call that sends it gives up. failed is the index of the statement
// that returned err, or -1; open reports whether the connection outlived
// the statements.
func (s *Store) send(ws []*fastWrite) (failed int, open bool, err error) {
	ctx := ws[0].ctx
	if len(ws) > 1 {
		ctx = context.WithoutCancel(ctx)
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return -1, false, err
	}
	defer c.Release()
	if s.flushing != nil {
		s.flushing(ctx, c.Conn().PgConn().PID(), len(ws))
	}
	failed = -1
	if len(ws) == 1 {
		var fresh bool
		err = c.QueryRow(ctx, ws[0].sql, ws[0].args...).Scan(&fresh)
	} else {
		b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(ws))}
		for _, w := range ws {
			b.Queue(w.sql, w.args...)
		}
		br := c.SendBatch(ctx, b)
		for i := range ws {
			if _, err = br.Exec(); err != nil {
				failed = i
				break
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr // the implicit commit's own failure
		}
	}
	return failed, !c.Conn().IsClosed(), err
}

func (w *fastWrite) finish(err error) {
	w.err = err
	close(w.done)
}
