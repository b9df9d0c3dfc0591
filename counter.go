package budget

import (
	"fmt"
	"time"
)

// Counter is one budget's counters as a store keeps them between calls: the
// window it last saw, the settled spend in that window, the sum of live
// holds and the levels already alerted in the window.
//
// Its methods are the per-budget steps of the Store contract, written once.
// A store loads the Counter inside its critical section, calls them in the
// contract's order, does the reading and writing they ask for, and saves
// the Counter with the rest of the step; it supplies only locking and I/O,
// so no rule can differ between stores:
//
//  1. Check (the version), and CheckLate for settings changes and resets;
//  2. when Advances says so, sum the settled spend in the policy's window
//     and call MoveTo, appending the rollover entry it returns;
//  3. expire the holds that are due, passing their sum to Unhold;
//  4. the step's own work: Hold, Charge, Unhold;
//  5. Finish, which marks the levels to alert and returns the Totals.
//
// key names the budget in error messages (for a user, the user ID).
type Counter struct {
	// Window is the window the counters are for.
	Window Window
	// Spent is the settled spend in Window.
	Spent Nanos
	// Held is the sum of live (pending, unexpired) holds.
	Held Nanos
	// Marked are the levels already alerted in Window.
	Marked LevelSet
}

// Check is step 1: it returns ErrConflict when version, the stored
// settings' version, is not the one p was computed from. The Manager then
// re-reads the settings and retries.
func (c *Counter) Check(key string, version int64, p Policy) error {
	if version != p.Version {
		return fmt.Errorf("%w: settings of %q are at version %d, not %d", ErrConflict, key, version, p.Version)
	}
	return nil
}

// Late reports whether p was computed at an earlier instant than a call
// already applied: its window starts before the stored one. A late request
// is decided against the stored window and never moves it.
func (c *Counter) Late(p Policy) bool {
	return !c.Window.IsZero() && p.Window.Start.Before(c.Window.Start)
}

// CheckLate returns a *LateError (matching ErrConflict) when p is late. Call
// it, after Check, for settings changes and resets, which must not move the
// window back to a period already over: the Manager retries them no earlier
// than the error's Start.
func (c *Counter) CheckLate(p Policy) error {
	if c.Late(p) {
		return &LateError{Start: c.Window.Start}
	}
	return nil
}

// Advances reports whether step 2 moves the counters to p's window: it
// differs from the stored one and p is not late. When it does, sum the
// settled spend whose time is in p.Window and call MoveTo.
func (c *Counter) Advances(p Policy) bool {
	return !c.Window.Equal(p.Window) && !c.Late(p)
}

// AdvancesCap is Advances for a model cap's counter, whose window is its
// holder's: holder is the counter of the cap's holder, which every request
// that names a cap also names (see HolderKey). The cap moves to p's window
// in either direction unless the holder is late for p. A settings change
// or reset that starts the holder's period earlier moves the holder's
// counter back in a request without its caps; the next call that names
// them moves them back after it, rather than leave them in a window the
// holder no longer has (where they would count nothing once it ends).
func (c *Counter) AdvancesCap(p Policy, holder *Counter) bool {
	return !c.Window.Equal(p.Window) && !holder.Late(p)
}

// MoveTo moves the counters to p's window, in either direction: the spend
// becomes spent, the store's sum of settled spend in p.Window, and the
// marks are cleared. When the new window starts at or after the stored
// one's end, the stored window closed on its own: MoveTo returns the
// rollover entry to append to the audit log (see RolloverEntry), and true.
// Moving to the stored window changes nothing.
func (c *Counter) MoveTo(key string, p Policy, spent Nanos, now time.Time) (AuditEntry, bool) {
	if c.Window.Equal(p.Window) {
		return AuditEntry{}, false
	}
	var e AuditEntry
	rolled := !c.Window.IsZero() && !p.Window.Start.Before(c.Window.End)
	if rolled {
		e = RolloverEntry(key, c.Window, c.Spent, p, now)
	}
	c.Window, c.Spent, c.Marked = p.Window, spent, 0
	return e, rolled
}

// Hold is Reserve's decision: when p allows a hold of amount against the
// counters, it adds amount to Held and reports true; otherwise it changes
// nothing and reports false. Holds whose sum would pass MaxNanos (possible
// only when p does not enforce) are an error.
func (c *Counter) Hold(key string, p Policy, amount Nanos) (bool, error) {
	if !p.Allows(c.Spent, c.Held, amount) {
		return false, nil
	}
	held, ok := c.Held.Add(amount)
	if !ok {
		return false, fmt.Errorf("budget: holds of %q exceed %s", key, MaxNanos)
	}
	c.Held = held
	return true, nil
}

// Unhold stops counting amount, the sum of holds closed or expired, in
// Held.
func (c *Counter) Unhold(amount Nanos) { c.Held -= amount }

// Charge counts a usage's cost in Spent when at is in the window; usage
// outside it (a late settle after a rollover) is recorded by the store but
// counts in the window it belongs to. A spend past MaxNanos is an error and
// changes nothing.
func (c *Counter) Charge(key string, cost Nanos, at time.Time) error {
	if !c.Window.Contains(at) {
		return nil
	}
	spent, ok := c.Spent.Add(cost)
	if !ok {
		return fmt.Errorf("budget: spend of %q exceeds %s", key, MaxNanos)
	}
	c.Spent = spent
	return nil
}

// Due reports whether Finish with p would mark a level: a read-only answer
// (Totals from a read connection or a cache) is only right when it would
// not.
func (c *Counter) Due(p Policy) bool { return p.Alerts(c.Marked, c.Spent) != 0 }

// Finish is the last step of every successful policy-carrying call: it
// marks the levels p.Alerts calls for, so that each is reported once per
// window however many callers race, and returns the totals with those
// levels in Alerts.
func (c *Counter) Finish(p Policy) Totals {
	fire := p.Alerts(c.Marked, c.Spent)
	c.Marked |= fire
	return Totals{Window: c.Window, Spent: c.Spent, Held: c.Held, Alerts: fire}
}

// Totals returns the counters as Totals, marking nothing.
func (c *Counter) Totals() Totals {
	return Totals{Window: c.Window, Spent: c.Spent, Held: c.Held}
}
