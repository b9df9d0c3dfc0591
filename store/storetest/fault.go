package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/llmbudget/budget"
)

// ErrInjected is the sentinel every error a Faulty makes up wraps.
var ErrInjected = errors.New("storetest: injected fault")

// When says where a Fault strikes: before the wrapped store is called, or
// after it returned (so that the call took effect but its reply is lost).
type When uint8

// The places a Fault strikes.
const (
	Before When = iota + 1
	After
)

func (w When) String() string {
	switch w {
	case Before:
		return "before"
	case After:
		return "after"
	}
	return fmt.Sprintf("When(%d)", uint8(w))
}

// Fault is what a Faulty does to one call.
type Fault struct {
	When When
	// Wait, when non-nil, is received from (or waited on until closed)
	// at the fault's place: before the store is called, or after it
	// returned and before the reply goes back. It is how a test delays a
	// call at a chosen point without sleeping.
	Wait <-chan struct{}
	// Err, when set, is returned instead of calling the store (Before) or
	// instead of its reply (After). The returned error wraps both
	// ErrInjected and Err.
	Err error
	// Cancel cancels the call's context: Before, the store is called with
	// a context already cancelled, and its reply returned; After, the
	// store's reply is dropped and an error wrapping ErrInjected and
	// context.Canceled returned, as for a caller whose context ended while
	// the call committed.
	Cancel bool
	// Duplicate delivers the request twice: the store is called a second
	// time with the same request, concurrently with the first, and the
	// first call's reply is returned. Both replies are reported.
	Duplicate bool
}

func (f Fault) String() string {
	s := f.When.String()
	switch {
	case f.Err != nil && errors.Is(f.Err, budget.ErrConflict):
		s += " conflict"
	case f.Err != nil:
		s += " error"
	case f.Cancel:
		s += " cancel"
	}
	if f.Wait != nil {
		s += " wait"
	}
	if f.Duplicate {
		s += " duplicate"
	}
	return s
}

// Call is one call through a Faulty, as a Rule sees it.
type Call struct {
	// Method is the budget.Store method: "Reserve", "Settle", ...
	Method string
	// N numbers the calls through the Faulty from 1.
	N int64
	// UserID is the user the call is for, when it names one.
	UserID string
	// HoldID is the hold of Reserve, Settle, Release and Extend.
	HoldID string
}

// Rule picks the fault for a call, or nil for none. It may be called from
// many goroutines at once.
type Rule func(Call) *Fault

// Result is what happened to one call, reported to Faulty.Observe.
type Result struct {
	Call  Call
	Fault *Fault // nil when none was injected
	// Called says whether the wrapped store was called; StoreErr is its
	// error, and Allowed, for Reserve, its verdict.
	Called   bool
	StoreErr error
	Allowed  bool
	// DupErr is the reply to the duplicate delivery, if any.
	DupErr error
	// Err is what the Faulty returned.
	Err error
}

// Faulty wraps a budget.Store and injects faults into chosen calls: errors,
// cancelled contexts, delays and duplicate deliveries, before or after the
// wrapped call, as its Rule decides. It is safe for concurrent use. With no
// rule it passes every call through unchanged.
type Faulty struct {
	store   budget.Store
	rule    atomic.Pointer[Rule]
	observe atomic.Pointer[func(Result)]
	n       atomic.Int64
}

var _ budget.Store = (*Faulty)(nil)

// NewFaulty returns s wrapped, with rule (which may be nil).
func NewFaulty(s budget.Store, rule Rule) *Faulty {
	f := &Faulty{store: s}
	f.SetRule(rule)
	return f
}

// Unwrap returns the wrapped store.
func (f *Faulty) Unwrap() budget.Store { return f.store }

// SetRule replaces the rule; nil injects nothing.
func (f *Faulty) SetRule(r Rule) {
	if r == nil {
		f.rule.Store(nil)
		return
	}
	f.rule.Store(&r)
}

// Observe sets a function called with the Result of every call, on the
// calling goroutine, after the call; nil stops observing.
func (f *Faulty) Observe(fn func(Result)) {
	if fn == nil {
		f.observe.Store(nil)
		return
	}
	f.observe.Store(&fn)
}

// Calls returns how many calls went through f.
func (f *Faulty) Calls() int64 { return f.n.Load() }

// Once returns a rule that injects fault into the first call of method
// (any method when empty) and nothing afterwards; fired reports whether it
// has.
func Once(method string, fault Fault) (rule Rule, fired func() bool) {
	var done atomic.Bool
	return func(c Call) *Fault {
		if (method == "" || c.Method == method) && done.CompareAndSwap(false, true) {
			f := fault
			return &f
		}
		return nil
	}, done.Load
}

// SeededRule returns a deterministic rule: call number N of a method gets
// faults[k] when a hash of (seed, method, N) falls below rate, k chosen by
// the same hash. The same seed and the same sequence of calls give the
// same faults. Methods, when given, restricts the rule to those.
func SeededRule(seed int64, rate float64, faults []Fault, methods ...string) Rule {
	if len(faults) == 0 || rate <= 0 {
		return nil
	}
	var mu sync.Mutex
	counts := map[string]int64{}
	return func(c Call) *Fault {
		if len(methods) > 0 && !contains(methods, c.Method) {
			return nil
		}
		mu.Lock()
		counts[c.Method]++
		n := counts[c.Method]
		mu.Unlock()
		h := mix64(uint64(seed) ^ mix64(uint64(n)) ^ strHash(c.Method))
		if float64(h>>11)/(1<<53) >= rate {
			return nil
		}
		f := faults[mix64(h)%uint64(len(faults))]
		return &f
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func strHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// injected is the error a Fault makes up for a call.
func injected(f *Fault, c Call) error {
	cause := f.Err
	if cause == nil {
		cause = context.Canceled
	}
	return fmt.Errorf("%w (%s, call %d %s): %w", ErrInjected, f.When, c.N, c.Method, cause)
}

// faultCall runs fn, the wrapped call, under the fault the rule picks.
func faultCall[T any](f *Faulty, ctx context.Context, c Call, fn func(context.Context) (T, error), allowed func(T) bool) (T, error) {
	c.N = f.n.Add(1)
	var ft *Fault
	if r := f.rule.Load(); r != nil {
		ft = (*r)(c)
	}
	res := Result{Call: c, Fault: ft}
	defer func() {
		if o := f.observe.Load(); o != nil {
			(*o)(res)
		}
	}()
	var zero T
	if ft != nil && ft.When == Before {
		if ft.Wait != nil {
			<-ft.Wait
		}
		if ft.Err != nil {
			res.Err = injected(ft, c)
			return zero, res.Err
		}
		if ft.Cancel {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			ctx = cctx
		}
	}
	var (
		v   T
		err error
	)
	if ft != nil && ft.Duplicate {
		var (
			wg   sync.WaitGroup
			err2 error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err2 = fn(ctx)
		}()
		v, err = fn(ctx)
		wg.Wait()
		res.DupErr = err2
	} else {
		v, err = fn(ctx)
	}
	res.Called, res.StoreErr = true, err
	if allowed != nil && err == nil {
		res.Allowed = allowed(v)
	}
	if ft != nil && ft.When == After {
		if ft.Wait != nil {
			<-ft.Wait
		}
		if ft.Err != nil || ft.Cancel {
			res.Err = injected(ft, c)
			return zero, res.Err
		}
	}
	res.Err = err
	return v, err
}

type reserveReply struct {
	t  budget.Totals
	ok bool
}

type resetReply struct {
	e budget.AuditEntry
	t budget.Totals
}

type settingsReply struct {
	s       budget.Settings
	created bool
}

type none struct{}

// Settings implements budget.Store.
func (f *Faulty) Settings(ctx context.Context, userID string) (budget.Settings, error) {
	return faultCall(f, ctx, Call{Method: "Settings", UserID: userID}, func(ctx context.Context) (budget.Settings, error) {
		return f.store.Settings(ctx, userID)
	}, nil)
}

// CreateSettings implements budget.Store.
func (f *Faulty) CreateSettings(ctx context.Context, req budget.CreateRequest) (budget.Settings, bool, error) {
	r, err := faultCall(f, ctx, Call{Method: "CreateSettings", UserID: req.Settings.UserID}, func(ctx context.Context) (settingsReply, error) {
		s, c, err := f.store.CreateSettings(ctx, req)
		return settingsReply{s, c}, err
	}, nil)
	return r.s, r.created, err
}

// UpdateSettings implements budget.Store.
func (f *Faulty) UpdateSettings(ctx context.Context, req budget.UpdateRequest) (budget.Totals, error) {
	return faultCall(f, ctx, Call{Method: "UpdateSettings", UserID: req.Settings.UserID}, func(ctx context.Context) (budget.Totals, error) {
		return f.store.UpdateSettings(ctx, req)
	}, nil)
}

// Reserve implements budget.Store.
func (f *Faulty) Reserve(ctx context.Context, req budget.ReserveRequest) (budget.Totals, bool, error) {
	r, err := faultCall(f, ctx, Call{Method: "Reserve", UserID: req.UserID, HoldID: req.HoldID}, func(ctx context.Context) (reserveReply, error) {
		t, ok, err := f.store.Reserve(ctx, req)
		return reserveReply{t, ok}, err
	}, func(r reserveReply) bool { return r.ok })
	return r.t, r.ok, err
}

// Settle implements budget.Store.
func (f *Faulty) Settle(ctx context.Context, req budget.SettleRequest) (budget.Totals, error) {
	return faultCall(f, ctx, Call{Method: "Settle", UserID: req.Usage.UserID, HoldID: req.HoldID}, func(ctx context.Context) (budget.Totals, error) {
		return f.store.Settle(ctx, req)
	}, nil)
}

// Release implements budget.Store.
func (f *Faulty) Release(ctx context.Context, req budget.ReleaseRequest) (budget.Totals, error) {
	return faultCall(f, ctx, Call{Method: "Release", UserID: req.UserID, HoldID: req.HoldID}, func(ctx context.Context) (budget.Totals, error) {
		return f.store.Release(ctx, req)
	}, nil)
}

// Extend implements budget.Store.
func (f *Faulty) Extend(ctx context.Context, req budget.ExtendRequest) (budget.Totals, error) {
	return faultCall(f, ctx, Call{Method: "Extend", UserID: req.UserID, HoldID: req.HoldID}, func(ctx context.Context) (budget.Totals, error) {
		return f.store.Extend(ctx, req)
	}, nil)
}

// Record implements budget.Store.
func (f *Faulty) Record(ctx context.Context, req budget.RecordRequest) (budget.Totals, error) {
	return faultCall(f, ctx, Call{Method: "Record", UserID: req.Usage.UserID}, func(ctx context.Context) (budget.Totals, error) {
		return f.store.Record(ctx, req)
	}, nil)
}

// Totals implements budget.Store.
func (f *Faulty) Totals(ctx context.Context, req budget.TotalsRequest) (budget.Totals, error) {
	return faultCall(f, ctx, Call{Method: "Totals", UserID: req.UserID}, func(ctx context.Context) (budget.Totals, error) {
		return f.store.Totals(ctx, req)
	}, nil)
}

// Reset implements budget.Store.
func (f *Faulty) Reset(ctx context.Context, req budget.ResetRequest) (budget.AuditEntry, budget.Totals, error) {
	r, err := faultCall(f, ctx, Call{Method: "Reset", UserID: req.Settings.UserID}, func(ctx context.Context) (resetReply, error) {
		e, t, err := f.store.Reset(ctx, req)
		return resetReply{e, t}, err
	}, nil)
	return r.e, r.t, err
}

// Defaults implements budget.Store.
func (f *Faulty) Defaults(ctx context.Context) (budget.Defaults, error) {
	return faultCall(f, ctx, Call{Method: "Defaults"}, func(ctx context.Context) (budget.Defaults, error) {
		return f.store.Defaults(ctx)
	}, nil)
}

// UpdateDefaults implements budget.Store.
func (f *Faulty) UpdateDefaults(ctx context.Context, req budget.DefaultsRequest) error {
	_, err := faultCall(f, ctx, Call{Method: "UpdateDefaults"}, func(ctx context.Context) (none, error) {
		return none{}, f.store.UpdateDefaults(ctx, req)
	}, nil)
	return err
}

// Templates implements budget.Store.
func (f *Faulty) Templates(ctx context.Context) ([]budget.Template, error) {
	return faultCall(f, ctx, Call{Method: "Templates"}, func(ctx context.Context) ([]budget.Template, error) {
		return f.store.Templates(ctx)
	}, nil)
}

// SaveTemplate implements budget.Store.
func (f *Faulty) SaveTemplate(ctx context.Context, req budget.TemplateRequest) error {
	_, err := faultCall(f, ctx, Call{Method: "SaveTemplate"}, func(ctx context.Context) (none, error) {
		return none{}, f.store.SaveTemplate(ctx, req)
	}, nil)
	return err
}

// DeleteTemplate implements budget.Store.
func (f *Faulty) DeleteTemplate(ctx context.Context, req budget.TemplateRequest) error {
	_, err := faultCall(f, ctx, Call{Method: "DeleteTemplate"}, func(ctx context.Context) (none, error) {
		return none{}, f.store.DeleteTemplate(ctx, req)
	}, nil)
	return err
}

// History implements budget.Store.
func (f *Faulty) History(ctx context.Context, q budget.HistoryQuery) (budget.HistoryPage, error) {
	return faultCall(f, ctx, Call{Method: "History", UserID: q.UserID}, func(ctx context.Context) (budget.HistoryPage, error) {
		return f.store.History(ctx, q)
	}, nil)
}

// Breakdown implements budget.Store.
func (f *Faulty) Breakdown(ctx context.Context, q budget.BreakdownQuery) ([]budget.UsageGroup, error) {
	return faultCall(f, ctx, Call{Method: "Breakdown", UserID: q.UserID}, func(ctx context.Context) ([]budget.UsageGroup, error) {
		return f.store.Breakdown(ctx, q)
	}, nil)
}

// Accounts implements budget.Store.
func (f *Faulty) Accounts(ctx context.Context, q budget.AccountsQuery) ([]budget.Account, error) {
	return faultCall(f, ctx, Call{Method: "Accounts"}, func(ctx context.Context) ([]budget.Account, error) {
		return f.store.Accounts(ctx, q)
	}, nil)
}

// Audit implements budget.Store.
func (f *Faulty) Audit(ctx context.Context, q budget.AuditQuery) ([]budget.AuditEntry, error) {
	return faultCall(f, ctx, Call{Method: "Audit", UserID: q.UserID}, func(ctx context.Context) ([]budget.AuditEntry, error) {
		return f.store.Audit(ctx, q)
	}, nil)
}

// Close implements budget.Store; it closes the wrapped store, with no fault.
func (f *Faulty) Close() error { return f.store.Close() }
