package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/llmbudget/budget"
)

// importing serializes imports, so that an import may lock, after the
// budgets it checked, the one a concurrent first call created meanwhile
// without a cycle of waits: other calls lock a user and then only keys
// above it (its caps), which no import locks.
var importing sync.Mutex

// Import implements budget.Store. It is atomic by holding the lock of
// every user it writes, taken in key order, while it checks every item
// (versions, lateness, the sums of the windows to move to), and writing
// only once all pass: then nothing can fail.
//
// A new user's record must be published in the user index before it is
// written, and a concurrent first call may create the same user after the
// check: the import then fails with ErrConflict, and the new users it had
// published keep the settings a first call would have given them
// (ImportItem.Initial), as if each had made one. The Manager reads again
// and retries, and finds them as existing users.
func (s *Store) Import(ctx context.Context, req budget.ImportRequest) ([]budget.Totals, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	importing.Lock()
	defer importing.Unlock()
	// Every user the request writes to, its items' and its audit
	// entries', in key order.
	keys := make([]string, 0, len(req.Items)+len(req.Audit))
	for i, it := range req.Items {
		if i > 0 && it.Settings.UserID <= req.Items[i-1].Settings.UserID {
			return nil, fmt.Errorf("budget/memory: import items out of key order at %q", it.Settings.UserID)
		}
		keys = append(keys, it.Settings.UserID)
	}
	for _, e := range req.Audit {
		if e.UserID != "" {
			keys = append(keys, e.UserID)
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	locked := map[string]*user{}
	unlock := func() {
		for _, u := range locked {
			u.mu.Unlock()
		}
	}
	for _, k := range keys {
		if v, ok := s.users.Load(k); ok {
			u := v.(*user)
			u.mu.Lock()
			locked[k] = u
		}
	}
	// Check every item; nothing changes until all pass.
	type plan struct {
		u             *user
		advance       bool
		current, next budget.Nanos
		create        bool
	}
	plans := make([]plan, len(req.Items))
	for i, it := range req.Items {
		key := it.Settings.UserID
		u := locked[key]
		switch {
		case u == nil && !it.Create:
			unlock()
			return nil, fmt.Errorf("%w: no settings for user %q", budget.ErrNotFound, key)
		case u == nil:
			plans[i].create = true
			continue
		case it.Create || u.cap:
			unlock()
			return nil, fmt.Errorf("%w: %q has settings since they were read", budget.ErrConflict, key)
		}
		if err := u.c.Check(key, u.s.Version, it.Current); err != nil {
			unlock()
			return nil, err
		}
		if err := u.c.CheckLate(it.Current); err != nil {
			unlock()
			return nil, err
		}
		p := &plans[i]
		p.u = u
		if p.advance = u.c.Advances(it.Current); p.advance {
			sum, err := u.sumIn(it.Current.Window)
			if err != nil {
				unlock()
				return nil, err
			}
			p.current = sum
		}
		sum, err := u.sumIn(it.Next.Window)
		if err != nil {
			unlock()
			return nil, err
		}
		p.next = sum
	}
	// Publish the new users, locked, as a first call would create them.
	for i, it := range req.Items {
		if !plans[i].create {
			continue
		}
		nu := &user{key: it.Settings.UserID, s: it.Initial.Clone(), c: budget.Counter{Window: it.Current.Window}, ids: map[string]entry{}}
		nu.mu.Lock()
		if _, loaded := s.users.LoadOrStore(nu.key, nu); loaded {
			unlock()
			return nil, fmt.Errorf("%w: %q has settings since they were read", budget.ErrConflict, nu.key)
		}
		locked[nu.key] = nu
		s.listed(nu.key)
		plans[i].u = nu
	}
	defer unlock()
	out := make([]budget.Totals, len(req.Items))
	for i, it := range req.Items {
		p, u := &plans[i], plans[i].u
		if p.advance {
			if e, ok := u.c.MoveTo(u.key, it.Current, p.current, req.Now); ok {
				s.appendAudit(u, e)
			}
		}
		u.expire(req.Now)
		if e, ok := u.c.MoveTo(u.key, it.Next, p.next, req.Now); ok {
			s.appendAudit(u, e)
		}
		u.s = it.Settings.Clone()
		s.appendAudit(u, it.Audit)
		out[i] = u.c.Finish(it.Next)
	}
	for _, e := range req.Audit {
		if u := locked[e.UserID]; u != nil {
			s.appendAudit(u, e)
			continue
		}
		s.mu.Lock()
		s.appendGlobal(e)
		s.mu.Unlock()
	}
	return out, nil
}

// listed adds a new holder's key to the list of its kind, as
// CreateSettings does.
func (s *Store) listed(key string) {
	scope, _ := budget.ScopeOfKey(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists == nil {
		s.lists = map[budget.ScopeKind]*keyList{}
	}
	l := s.lists[scope.Kind]
	if l == nil {
		l = &keyList{}
		s.lists[scope.Kind] = l
	}
	l.keys, l.unsorted = append(l.keys, key), true
}
