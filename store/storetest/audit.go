package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/llmbudget/budget"
)

// testAuditFilter fills the log with entries of every type, for two users,
// the defaults and a template, then checks every filter (user, type, both,
// neither), whole and a page at a time through Before, against the whole
// log filtered here.
func testAuditFilter(t *testing.T, s budget.Store) {
	c := NewClock(start)
	m := newManager(s, c, budget.Options{})
	configure(t, m, "u", limit("10"))
	configure(t, m, "v", limit("3"))
	c.Advance(time.Minute)
	if _, err := m.Reset(ctx, admin, "u", budget.ResetOptions{Reason: "filter"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateDefaults(ctx, admin, limit("40")); err != nil {
		t.Fatal(err)
	}
	p := templatePlan("5")
	if err := s.SaveTemplate(ctx, templateReq("intern", &p, 1, 0, c.Now())); err != nil {
		t.Fatal(err)
	}
	configure(t, m, "u", limit("11"))
	configure(t, m, "v", limit("4"))
	c.Set(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) // u's and v's periods end
	status(t, m, "u")
	status(t, m, "v")
	configure(t, m, "u", limit("12"))

	log := func(q budget.AuditQuery) []int64 {
		t.Helper()
		es, err := s.Audit(ctx, q)
		if err != nil {
			t.Fatalf("audit %+v: %v", q, err)
		}
		var ids []int64
		for _, e := range es {
			if (q.UserID != "" && e.UserID != q.UserID) || (q.Type != "" && e.Type != q.Type) {
				t.Errorf("audit %+v returned an entry of %q, type %s", q, e.UserID, e.Type)
			}
			ids = append(ids, e.ID)
		}
		return ids
	}
	all, err := s.Audit(ctx, budget.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, user := range []string{"", "u", "v", "nobody"} {
		for _, typ := range append([]budget.AuditType{""}, budget.AuditTypes[:]...) {
			var want []int64
			for _, e := range all {
				if (user == "" || e.UserID == user) && (typ == "" || e.Type == typ) {
					want = append(want, e.ID)
				}
			}
			counts[fmt.Sprintf("%s/%s", user, typ)] = len(want)
			q := budget.AuditQuery{UserID: user, Type: typ}
			if got := log(q); !slices.Equal(got, want) {
				t.Errorf("audit of user %q, type %q: %v, want %v", user, typ, got, want)
			}
			var paged []int64
			for q.Limit = 2; ; {
				page := log(q)
				if len(page) > 2 {
					t.Fatalf("audit %+v: %d entries", q, len(page))
				}
				paged = append(paged, page...)
				if len(page) < 2 {
					break
				}
				q.Before = page[len(page)-1]
			}
			if !slices.Equal(paged, want) {
				t.Errorf("audit of user %q, type %q two at a time: %v, want %v", user, typ, paged, want)
			}
		}
	}
	// The log holds what the steps above wrote: a sanity check of the
	// comparison's input.
	for k, n := range map[string]int{
		"/": 10, "u/settings": 3, "u/manual": 1, "u/automatic": 1, "v/settings": 2, "v/manual": 0,
		"/defaults": 1, "/template": 1, "/automatic": 2, "nobody/": 0, "u/template": 0,
	} {
		if counts[k] != n {
			t.Errorf("%s: %d entries, want %d", k, counts[k], n)
		}
	}
}

// testAuditBulkFields checks that the store keeps an entry's BulkID and
// Template as given, and that entries without them read back empty.
func testAuditBulkFields(t *testing.T, s budget.Store) {
	m := newManager(s, NewClock(start), budget.Options{})
	set := configure(t, m, "u", limit("10"))
	update := func(lim, bulk, template string) {
		t.Helper()
		next := set
		next.Limit, next.Version, next.UpdatedAt = amt(lim), set.Version+1, start
		before, after := set, next
		_, err := s.UpdateSettings(ctx, budget.UpdateRequest{
			Settings: next, Current: policyOf(set, start), Next: policyOf(next, start), Now: start,
			Audit: budget.AuditEntry{
				UserID: "u", Type: budget.AuditSettings, Actor: admin.UserID, ActorAdmin: true,
				PreviousLimit: set.Limit, NewLimit: next.Limit, Before: &before, After: &after,
				BulkID: bulk, Template: template, At: start,
			},
		})
		if err != nil {
			t.Fatalf("update to %s: %v", lim, err)
		}
		set = next
	}
	update("20", "bulk-01JZ6Q", "intern")
	update("30", "", "researcher")
	update("40", "bulk-01JZ6Q", "")
	err := s.UpdateDefaults(ctx, budget.DefaultsRequest{
		Defaults: budget.Defaults{Plan: budget.DefaultUserPlan(), Version: 2, UpdatedAt: start}, ExpectVersion: 0,
		Audit: budget.AuditEntry{Type: budget.AuditDefaults, Actor: admin.UserID, ActorAdmin: true, BulkID: "bulk-01JZ6Q", At: start},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"defaults bulk-01JZ6Q/", "settings bulk-01JZ6Q/", "settings /researcher", "settings bulk-01JZ6Q/intern", "settings /"}
	for _, user := range []string{"", "u"} {
		es, err := s.Audit(ctx, budget.AuditQuery{UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, fmt.Sprintf("%s %s/%s", e.Type, e.BulkID, e.Template))
		}
		w := want
		if user != "" {
			w = want[1:]
		}
		if !slices.Equal(got, w) {
			t.Errorf("audit of %q: %q, want %q", user, got, w)
		}
	}
}
