package storetest

// The generator of RunModel's sequential run: it draws each operation from
// the seed and the state so far, leaning towards the edges (the exact
// remaining budget, one nano-dollar more, the instant a period ends or a
// hold expires, the minutes around a DST change).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/llmbudget/budget"
	"github.com/shopspring/decimal"
)

type modelGen struct {
	rng   *rand.Rand
	rate  float64
	fresh int     // new users introduced
	last  mopKind // the previous operation's kind
	look  string  // a user to look at next
	edge  string  // a user whose period the clock just moved to the end of
}

func newModelGen(seed int64, rate float64) *modelGen {
	return &modelGen{rng: rand.New(rand.NewPCG(uint64(seed), 0x67656e)), rate: rate}
}

var (
	oneNano     = decimal.New(1, -budget.Places)
	modelLabels = [][2]string{{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"anthropic", "claude"}, {"", ""}}
)

func (g *modelGen) pct(p int) bool { return g.rng.IntN(100) < p }

// money returns a random amount in [0, max], with 0, 2, 4 or 9 decimal
// places.
func (g *modelGen) money(max decimal.Decimal) decimal.Decimal {
	n, err := budget.ToNanos(max)
	if err != nil || n <= 0 {
		return decimal.Zero
	}
	v := g.rng.Int64N(int64(n) + 1)
	unit := []int64{1e9, 1e7, 1e7, 1e5, 1}[g.rng.IntN(5)]
	return decimal.New(v/unit*unit, -budget.Places)
}

func (g *modelGen) user(r *seqRun) string {
	if g.fresh < 4 && g.pct(2) {
		g.fresh++
		return fmt.Sprint("n", g.fresh)
	}
	if g.fresh > 0 && g.pct(15) {
		return fmt.Sprint("n", 1+g.rng.IntN(g.fresh))
	}
	return r.cfg.users[g.rng.IntN(len(r.cfg.users))]
}

// budgetOf returns the user's limit and what a Reserve could take now,
// as far as the model can tell before the operation runs.
func (g *modelGen) budgetOf(r *seqRun, user string, now time.Time) (limit, rem decimal.Decimal) {
	u := r.ref.users[user]
	if u == nil {
		p := r.ref.plan(user)
		return p.Limit, p.Limit
	}
	spent := u.spentIn(r.ref.window(u, now))
	held := decimal.Zero
	for _, h := range u.live {
		if now.Before(h.expires) {
			held = held.Add(h.amount)
		}
	}
	return u.plan.Limit, u.plan.Limit.Sub(spent).Sub(held)
}

func (g *modelGen) next(r *seqRun, idx int) mop {
	op := mop{idx: idx}
	now := r.clock.Now()
	defer func() { g.last = op.kind }()
	if u := g.look; u != "" {
		g.look = ""
		if g.pct(60) {
			op.kind, op.user = mopStatus, u
			return op
		}
	}
	if u := g.edge; u != "" {
		g.edge = ""
		if g.pct(40) && g.refused(r, &op, u) {
			op.quiet = g.pct(50)
			return op
		}
	}
	switch w := g.rng.IntN(100); {
	case g.pct(7):
		g.scopeOp(r, &op, now)
	case w < 25:
		g.reserve(r, &op, now)
	case w < 40:
		if !g.settle(r, &op) {
			g.reserve(r, &op, now)
		}
	case w < 47:
		if !g.release(r, &op) {
			g.reserve(r, &op, now)
		}
	case w < 51:
		if !g.extend(r, &op, now) {
			g.reserve(r, &op, now)
		}
	case w < 62:
		g.record(r, &op, now)
	case w < 65:
		op.kind, op.user = mopStatus, g.user(r)
	case w < 68:
		op.kind, op.user = mopReset, g.user(r)
	case w < 76:
		g.update(r, &op, now)
	case w < 89:
		g.clock(r, &op, now)
	case w < 92:
		op.kind, op.user = mopSettings, g.user(r)
	case w < 94:
		op.kind, op.level = mopList, -1
		if g.pct(50) {
			op.page = 1 + g.rng.IntN(4)
		}
		if g.pct(25) {
			op.level = g.rng.IntN(4)
		}
	case w < 97:
		g.breakdown(r, &op, now)
	case w < 98:
		g.defaults(r, &op)
	default:
		op.kind, op.user = mopStatus, g.user(r)
	}
	if storeMethod[op.kind] != "" && !op.invalid && op.amount.Sign() >= 0 && g.rng.Float64() < g.rate {
		op.fault = mfault(1 + g.rng.IntN(int(mfConflictBefore)))
	}
	op.quiet = g.pct(50)
	if op.kind != mopClock && g.pct(30) {
		op.mgr = 1
	}
	return op
}

// refused draws an operation on user that its store refuses, if there is
// one: an extend or settle of a closed reservation, an extend of an
// expired one, a record with an ID the user has. Made first after a
// period's end, it checks that a refused call moves no window (the first
// call of a period rolls it over, and writes the rollover audit entry).
func (g *modelGen) refused(r *seqRun, op *mop, user string) bool {
	var closed, open []int
	for _, i := range r.resIdx[max(0, len(r.resIdx)-64):] {
		if c := r.cres[i]; r.res[i] != nil && c.user == user {
			if c.closed {
				closed = append(closed, i)
			} else {
				open = append(open, i)
			}
		}
	}
	switch k := g.rng.IntN(3); {
	case k == 0 && len(open) > 0:
		// An extend: refused as expired when its hold expired.
		op.kind, op.user, op.res = mopExtend, user, open[g.rng.IntN(len(open))]
	case k == 1 && len(closed) > 0:
		i := closed[g.rng.IntN(len(closed))]
		op.kind, op.user, op.res = mopSettle, user, i
		op.amount = r.cres[i].amount
	case len(r.usedIDs[user]) > 0:
		op.kind, op.user, op.amount = mopRecord, user, oneNano
		op.id = g.otherID(r, user, 0)
		op.provider, op.model = g.callModel(r, user)
	default:
		return false
	}
	return true
}

func (g *modelGen) reserve(r *seqRun, op *mop, now time.Time) {
	op.kind, op.user = mopReserve, g.user(r)
	_, op.model = g.callModel(r, op.user)
	limit, rem := g.budgetOf(r, op.user, now)
	if l, m, ok := r.ref.roomFor(r.ref.users[op.user], op.model, now); ok && g.pct(70) && m.LessThan(rem) {
		limit, rem = l, m // aim at the budget that binds
	}
	pos := rem
	if pos.Sign() < 0 {
		pos = decimal.Zero
	}
	switch g.rng.IntN(40) {
	case 0, 1:
		op.amount = decimal.Zero
	case 2, 3:
		op.amount = oneNano
	case 4, 5, 6, 7, 8:
		op.amount = pos
	case 9, 10, 11:
		op.amount = pos.Add(oneNano)
	case 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24:
		op.amount = g.money(pos)
	case 25, 26, 27, 28, 29, 30:
		op.amount = g.money(pos.Mul(decimal.NewFromInt(3)).Div(decimal.NewFromInt(2)).Round(budget.Places).Add(decimal.NewFromInt(1)))
	case 31, 32:
		op.amount = g.money(limit.Mul(decimal.NewFromInt(2)).Add(decimal.NewFromInt(1)))
	case 33:
		op.amount = decimal.NewFromInt(-1) // refused as invalid
	default:
		op.amount = g.money(decimal.NewFromInt(1))
	}
}

// pickRes picks a reservation the client holds: mostly an open one among
// the recent ones, else one it already closed, and now and then any.
func (g *modelGen) pickRes(r *seqRun, openPct int) (int, bool) {
	if n := len(r.resIdx); n > 0 && g.pct(10) {
		if i := r.resIdx[g.rng.IntN(n)]; r.res[i] != nil {
			return i, true
		}
	}
	var open, closed []int
	for _, i := range r.resIdx[max(0, len(r.resIdx)-64):] {
		if r.res[i] == nil {
			continue
		}
		if r.cres[i].closed {
			closed = append(closed, i)
		} else {
			open = append(open, i)
		}
	}
	if len(open) > 0 && (len(closed) == 0 || g.pct(openPct)) {
		return open[g.rng.IntN(len(open))], true
	}
	if len(closed) > 0 {
		return closed[g.rng.IntN(len(closed))], true
	}
	return 0, false
}

func (g *modelGen) labels(op *mop) {
	l := modelLabels[g.rng.IntN(len(modelLabels))]
	if g.pct(40) {
		l = modelCapModels[g.rng.IntN(len(modelCapModels))]
	}
	op.provider, op.model = l[0], l[1]
	op.in, op.out = g.rng.Int64N(5000), g.rng.Int64N(800)
}

// otherID picks a usage ID the user already has, or the hold ID of one of
// their reservations, to collide with.
func (g *modelGen) otherID(r *seqRun, user string, holdPct int) idRef {
	if g.pct(holdPct) {
		var same []int
		for _, i := range r.resIdx[max(0, len(r.resIdx)-64):] {
			if c := r.cres[i]; c.user == user {
				same = append(same, i)
			}
		}
		if len(same) > 0 {
			return holdOf(same[g.rng.IntN(len(same))])
		}
	}
	if used := r.usedIDs[user]; len(used) > 0 {
		if len(used) > 16 && g.pct(70) {
			used = used[len(used)-16:]
		}
		return used[g.rng.IntN(len(used))]
	}
	return idRef{}
}

func (g *modelGen) settle(r *seqRun, op *mop) bool {
	i, ok := g.pickRes(r, 85)
	if !ok {
		return false
	}
	c := r.cres[i]
	op.kind, op.res, op.user = mopSettle, i, c.user
	est := c.amount
	switch g.rng.IntN(12) {
	case 0:
		op.amount = decimal.Zero
	case 1, 2, 3:
		op.amount = est
	case 4:
		op.amount = decimal.Max(decimal.Zero, est.Sub(oneNano))
	case 5:
		op.amount = est.Add(oneNano)
	case 6, 7, 8:
		op.amount = g.money(est)
	case 9, 10:
		op.amount = est.Add(g.money(est.Add(decimal.NewFromInt(1))))
	default:
		op.amount = g.money(decimal.NewFromInt(3))
	}
	g.labels(op)
	if c.model != "" {
		switch w := g.rng.IntN(100); {
		case w < 60:
			op.model = "" // the reservation's
		case w < 92:
			op.model = c.model
		}
	}
	switch w := g.rng.IntN(100); {
	case w < 55:
	case w < 80:
		op.id = idRef{lit: fmt.Sprint("s-", op.idx)}
	default:
		op.id = g.otherID(r, c.user, 40)
	}
	return true
}

func (g *modelGen) release(r *seqRun, op *mop) bool {
	i, ok := g.pickRes(r, 80)
	if !ok {
		return false
	}
	op.kind, op.res, op.user = mopRelease, i, r.cres[i].user
	return true
}

// extend picks a reservation to extend: mostly one whose hold still
// counts and that the clock moved past since its expiry was set (so that
// the Reservation asks the store), else as pickRes does (open ones, often
// expired by now, and closed ones).
func (g *modelGen) extend(r *seqRun, op *mop, now time.Time) bool {
	var live []int
	for _, i := range r.resIdx[max(0, len(r.resIdx)-64):] {
		c := r.cres[i]
		if r.res[i] == nil || c.closed || !c.expires.Before(now.Add(r.cfg.ttl)) {
			continue
		}
		if h := r.ref.users[c.user].live[c.holdID]; h != nil && now.Before(h.expires) {
			live = append(live, i)
		}
	}
	i, ok := 0, false
	if len(live) > 0 && g.pct(50) {
		i, ok = live[g.rng.IntN(len(live))], true
	} else {
		i, ok = g.pickRes(r, 90)
	}
	if !ok {
		return false
	}
	op.kind, op.res, op.user = mopExtend, i, r.cres[i].user
	return true
}

func (g *modelGen) record(r *seqRun, op *mop, now time.Time) {
	op.kind, op.user = mopRecord, g.user(r)
	limit, rem := g.budgetOf(r, op.user, now)
	switch g.rng.IntN(40) {
	case 0, 1, 2, 3:
		op.amount = decimal.Zero
	case 4, 5, 6:
		op.amount = decimal.Max(decimal.Zero, rem)
	case 7:
		op.amount = g.money(limit.Mul(decimal.NewFromInt(2)))
	case 8:
		op.amount = decimal.NewFromInt(-2) // refused as invalid
	default:
		op.amount = g.money(limit.Div(decimal.NewFromInt(4)).Round(budget.Places))
	}
	g.labels(op)
	if r.ref.capsApply(r.ref.users[op.user]) && g.pct(85) {
		op.provider, op.model = g.callModel(r, op.user)
	}
	switch w := g.rng.IntN(100); {
	case w < 55:
		op.id = idRef{lit: fmt.Sprint("r-", op.idx)}
	case w < 70:
	default:
		if op.id = g.otherID(r, op.user, 30); op.id == (idRef{}) {
			op.id = idRef{lit: fmt.Sprint("r-", op.idx)}
		}
	}
}

// breakdown asks for the current period, or for a range whose ends are
// often the instant of a usage, a nanosecond either side, or a midnight.
func (g *modelGen) breakdown(r *seqRun, op *mop, now time.Time) {
	op.kind, op.user = mopBreakdown, g.user(r)
	u := r.ref.users[op.user]
	if u == nil || len(u.rows) == 0 || g.pct(40) {
		return
	}
	near := func() time.Time {
		t := u.rows[max(0, len(u.rows)-1-g.rng.IntN(min(len(u.rows), 50)))].at
		switch g.rng.IntN(5) {
		case 0:
			return t.Add(-1)
		case 1:
			return t.Add(1)
		case 2:
			y, m, d := t.UTC().Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		}
		return t
	}
	from := near()
	to := from.Add([]time.Duration{1, time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 40 * 24 * time.Hour}[g.rng.IntN(5)])
	if g.pct(40) {
		to = near()
	}
	if from.Before(to) {
		op.from, op.to = from, to
	}
}

func (g *modelGen) zone() string { return modelZones[g.rng.IntN(len(modelZones))] }

// anchorNear returns an instant within 60 days of now, at a wall time of
// loc that is often midnight or inside a DST change.
func (g *modelGen) anchorNear(r *seqRun, tz string, now time.Time) time.Time {
	loc := r.ref.loc(tz)
	d := now.In(loc).AddDate(0, 0, g.rng.IntN(121)-60)
	h, m := []int{0, 0, 0, 1, 2, 2, 3, 12, 23, 23}[g.rng.IntN(10)], []int{0, 0, 30, 59}[g.rng.IntN(4)]
	return time.Date(d.Year(), d.Month(), d.Day(), h, m, 0, 0, loc)
}

// planUpdate draws a change of one to three fields of p.
func (g *modelGen) planUpdate(r *seqRun, p budget.Plan, spent decimal.Decimal, now time.Time, forDefaults bool) refUpdate {
	var u refUpdate
	for n := 1 + g.rng.IntN(3); n > 0; n-- {
		switch g.rng.IntN(6) {
		case 0, 1:
			var l decimal.Decimal
			switch g.rng.IntN(6) {
			case 0:
				l = p.Limit.Add(g.money(decimal.NewFromInt(20)))
			case 1:
				l = p.Limit.Sub(g.money(p.Limit))
			case 2:
				l = decimal.Zero
			case 3:
				l = spent
			case 4:
				l = p.Limit // no change
			default:
				l = g.money(decimal.NewFromInt(100))
			}
			u.limit = &l
		case 2:
			per := []budget.Period{budget.Daily, budget.Weekly, budget.Monthly, budget.Custom}[g.rng.IntN(4)]
			u.period, u.days = &per, nil
			if per == budget.Custom {
				days := []int{1, 2, 3, 5, 7, 10, 31, 90}[g.rng.IntN(8)]
				u.days = &days
			}
		case 3:
			tz := g.zone()
			u.tz = &tz
		case 4:
			e := !p.Enforce
			u.enforce = &e
		case 5:
			th := modelThresholds[g.rng.IntN(len(modelThresholds))]
			u.thresholds = &th
		}
	}
	tz := p.Timezone
	if u.tz != nil {
		tz = *u.tz
	}
	custom := (u.period != nil && *u.period == budget.Custom) || (u.period == nil && p.Period == budget.Custom)
	switch {
	case !custom:
	case forDefaults:
		// New users are anchored at their first local midnight: keep the
		// defaults in a zone where that is unambiguous.
		if !midnightSafe[tz] {
			utc := "UTC"
			u.tz = &utc
		}
	case u.period != nil && p.Period != budget.Custom && (!midnightSafe[tz] || g.pct(50)):
		a := g.anchorNear(r, tz, now)
		u.anchor = &a
	}
	return u
}

func (g *modelGen) update(r *seqRun, op *mop, now time.Time) {
	op.kind, op.user = mopUpdate, g.user(r)
	p, spent := r.ref.plan(op.user), decimal.Zero
	if u := r.ref.users[op.user]; u != nil {
		p, spent = u.plan, u.spentIn(r.ref.window(u, now))
	}
	op.upd = g.planUpdate(r, p, spent, now, false)
	if g.pct(8) {
		var cur []budget.ModelCap
		if u := r.ref.users[op.user]; u != nil {
			cur = u.scopes.caps
		}
		cs := g.caps(cur)
		op.upd.caps = &cs
	}
	if g.pct(2) {
		bad := decimal.NewFromInt(-1)
		op.upd.limit, op.invalid = &bad, true
	}
}

func (g *modelGen) defaults(r *seqRun, op *mop) {
	op.kind = mopDefaults
	p := r.ref.userPlan
	if r.ref.defaults != nil {
		p = *r.ref.defaults
	}
	op.upd = g.planUpdate(r, p, decimal.Zero, r.clock.Now(), true)
	if g.pct(5) {
		bad := decimal.NewFromInt(-1)
		op.upd.limit, op.invalid = &bad, true
	}
}

func (g *modelGen) clock(r *seqRun, op *mop, now time.Time) {
	op.kind = mopClock
	small := []time.Duration{1, time.Millisecond, time.Second, 10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 9 * time.Hour}
	near := []time.Duration{-time.Hour, -time.Second, -1, 0, 0, 1, time.Second, time.Hour}
	var at time.Time
	switch k := g.rng.IntN(16); {
	case g.pct(40) && !r.firstExpiry(now).IsZero():
		// Holds are fewer where teams and caps refuse many reserves:
		// aim at the expiries extends moved more often, and look at
		// the hold's user next.
		var t time.Time
		t, g.look = r.firstExtended(now)
		at, op.why = t.Add(near[2+g.rng.IntN(4)]), "the expiry an extend moved"
	case k < 6:
		at, op.why = now.Add(small[g.rng.IntN(len(small))]), "small step"
	case k < 8:
		at, op.why = now.Add(r.cfg.ttl), "one hold TTL"
		if exp := r.nextExpiry(now); !exp.IsZero() {
			at, op.why = exp.Add(near[2+g.rng.IntN(4)]), "a hold's expiry"
		}
		if exp := r.firstExpiry(now); !exp.IsZero() && g.pct(50) {
			at, op.why = exp.Add(near[2+g.rng.IntN(4)]), "the expiry an extend moved"
		}
	case k < 11 && g.pct(12):
		if t, why, ok := g.holderClock(r, now); ok {
			at, op.why = t, why
		}
	case k < 11:
		user := r.cfg.users[g.rng.IntN(len(r.cfg.users))]
		if u := r.ref.users[user]; u != nil {
			end := r.ref.window(u, now).End
			at, op.why = end.Add(near[g.rng.IntN(len(near))]), "the end of "+user+"'s period"
			if g.pct(20) {
				at = end.Add(time.Duration(g.rng.Int64N(int64(3 * time.Hour))))
			}
			g.edge = user
		}
	case k < 13:
		zones := modelZones[2:]
		tz := zones[g.rng.IntN(len(zones))]
		_, tr := now.In(r.ref.loc(tz)).ZoneBounds()
		if !tr.IsZero() && tr.Sub(now) < 250*24*time.Hour {
			at, op.why = tr.Add(near[g.rng.IntN(len(near))]), "the DST change of "+tz
		}
	case k < 14:
		at, op.why = now.Add([]time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 31 * 24 * time.Hour}[g.rng.IntN(3)]), "days"
	case k < 15:
		at, op.why = now.Add(time.Duration(g.rng.Int64N(int64(90*24*time.Hour)))), "up to 90 days"
	default:
		at, op.why = now.Add(time.Duration(g.rng.Int64N(int64(2*r.cfg.ttl)))), "up to two TTLs"
	}
	// Big jumps must keep to a schedule, so that a long soak stays within
	// the years stores keep: about 400 days by the 5,000th operation, and
	// only logarithmically more after.
	sched := r.cfg.start.Add(60*24*time.Hour + time.Duration(400*24*float64(time.Hour)*math.Log2(1+float64(op.idx)/5000)))
	if at.After(sched) && at.Sub(now) > 9*time.Hour {
		at = time.Time{}
	}
	if !at.After(now) {
		at, op.why = now.Add(small[g.rng.IntN(len(small))]), "small step"
	}
	op.at = at
}

// nextExpiry returns the earliest expiry after now of a hold that still
// counts, or the zero time.
func (r *seqRun) nextExpiry(now time.Time) time.Time {
	var next time.Time
	for _, u := range r.ref.users {
		for _, h := range u.live {
			if h.expires.After(now) && (next.IsZero() || h.expires.Before(next)) {
				next = h.expires
			}
		}
	}
	return next
}

// firstExpiry returns the earliest expiry after now that an extend moved
// later, or the zero time, and forgets those already past.
func (r *seqRun) firstExpiry(now time.Time) time.Time {
	t, _ := r.firstExtended(now)
	return t
}

// extendedFrom is the expiry a hold of user had before an extend moved it.
type extendedFrom struct {
	at   time.Time
	user string
}

// firstExtended is firstExpiry with the user whose hold it is.
func (r *seqRun) firstExtended(now time.Time) (time.Time, string) {
	r.extendedFrom = slices.DeleteFunc(r.extendedFrom, func(e extendedFrom) bool { return !e.at.After(now) })
	var first extendedFrom
	for _, e := range r.extendedFrom {
		if first.at.IsZero() || e.at.Before(first.at) {
			first = e
		}
	}
	return first.at, first.user
}
