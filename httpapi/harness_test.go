package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/memory"
	"github.com/llmbudget/budget/store/storetest"
	"github.com/shopspring/decimal"
)

// apiStart is mid-March, so no test crosses a monthly boundary by accident.
var apiStart = time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

// The principals of the tests, by bearer token.
var apiTokens = map[string]budget.Principal{
	"tok-root":  {UserID: "root", Admin: true},
	"tok-root2": {UserID: "root2", Admin: true},
	"tok-carol": {UserID: "carol"}, // the default plan: visible, view-only
	"tok-hank":  {UserID: "hank"},  // hidden, though allowed to modify and reset
	"tok-nora":  {UserID: "nora"},  // visible, no permissions
	"tok-pete":  {UserID: "pete"},  // visible, may modify and reset
	"tok-tina":  {UserID: "tina"},  // the default plan, in the team research (newTeamFixture)
	"tok-otto":  {UserID: "otto"},  // the default plan, in the team ops (newTeamFixture)
}

// bearerAuth authenticates "Authorization: Bearer <token>" from apiTokens.
func bearerAuth(r *http.Request) (budget.Principal, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return budget.Principal{}, errors.New("no bearer token")
	}
	p, ok := apiTokens[tok]
	if !ok {
		return budget.Principal{}, errors.New("unknown token")
	}
	return p, nil
}

var rootP = budget.Principal{UserID: "root", Admin: true}

// fixture is a Manager over a store with the test users set up, and the
// handler over it.
type fixture struct {
	t     testing.TB
	clock *storetest.Clock
	m     *budget.Manager
	h     http.Handler
}

func newFixture(t testing.TB) *fixture {
	return newFixtureOn(t, memory.New(), httpapi.Options{})
}

// newFixtureOn sets up the users on store: carol on the default plan, hank
// hidden, nora without permissions, pete with them, tess configured by an
// admin, each with some usage; and the template "intern".
func newFixtureOn(t testing.TB, store budget.Store, opts httpapi.Options) *fixture {
	t.Helper()
	clock := storetest.NewClock(apiStart)
	m := budget.NewManager(store, budget.Options{
		Now:     clock.Now,
		IsAdmin: func(id string) bool { return id == "root" || id == "root2" },
	})
	if opts.Authenticate == nil {
		opts.Authenticate = bearerAuth
	}
	h, err := httpapi.New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, clock: clock, m: m, h: h}
	ctx := context.Background()
	yes, no := true, false
	limit := func(s string) *decimal.Decimal { d := budget.MustAmount(s); return &d }
	for user, u := range map[string]budget.SettingsUpdate{
		"hank": {Visible: &no, CanModify: &yes, CanReset: &yes, Limit: limit("20")},
		"nora": {Visible: &yes, CanModify: &no, CanReset: &no, Limit: limit("10")},
		"pete": {Visible: &yes, CanModify: &yes, CanReset: &yes, Limit: limit("40")},
		"tess": {Limit: limit("50"), AdminNotes: ptr("watch her")},
	} {
		if _, err := m.UpdateSettings(ctx, rootP, user, u); err != nil {
			t.Fatal(err)
		}
	}
	// A template, "intern": $5 a week, view-only.
	if _, err := m.SaveTemplate(ctx, rootP, "intern", budget.SettingsUpdate{
		Limit: limit("5"), Period: ptr(budget.Weekly), CanModify: &no, CanReset: &no,
	}); err != nil {
		t.Fatal(err)
	}
	for i, user := range []string{"carol", "hank", "nora", "pete", "tess", "root"} {
		for j, model := range []string{"gpt-4o", "claude", "gpt-4o"} {
			provider := "openai"
			if model == "claude" {
				provider = "anthropic"
			}
			clock.Advance(time.Second)
			cost := decimal.New(int64(10*(i+1)+j), -2) // cents
			if _, err := m.Record(ctx, user, budget.Usage{Provider: provider, Model: model, InputTokens: 100, OutputTokens: 10, Cost: cost}); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock.Advance(time.Minute)
	return f
}

// newTeamFixture is newFixture with teams and an org: the team research
// ($100 a month, a $1 cap on gpt-4o*, admin notes, in the org acme), the
// team ops ($50) and the org acme ($1000); tina in research and acme, otto
// in ops, each with some usage.
func newTeamFixture(t testing.TB) *fixture {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	limit := func(s string) *decimal.Decimal { d := budget.MustAmount(s); return &d }
	caps := []budget.ModelCap{{Pattern: "gpt-4o*", Limit: budget.MustAmount("1")}}
	for _, b := range []struct {
		scope budget.Scope
		u     budget.SettingsUpdate
	}{
		{budget.Team("research"), budget.SettingsUpdate{Limit: limit("100"), ModelCaps: &caps, AdminNotes: ptr("the lab")}},
		{budget.Team("ops"), budget.SettingsUpdate{Limit: limit("50")}},
		{budget.Org("acme"), budget.SettingsUpdate{Limit: limit("1000")}},
	} {
		if _, err := f.m.UpdateBudget(ctx, rootP, b.scope, b.u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.SetTeamOrg(ctx, rootP, "research", "acme"); err != nil {
		t.Fatal(err)
	}
	for user, ms := range map[string]budget.Membership{
		"tina": {Teams: []string{"research"}, Org: "acme"},
		"otto": {Teams: []string{"ops"}},
	} {
		if _, err := f.m.SetMembership(ctx, rootP, user, ms); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ user, provider, model, cost string }{
		{"tina", "openai", "gpt-4o", "0.3"},
		{"tina", "anthropic", "claude", "0.2"},
		{"otto", "openai", "gpt-4o-mini", "0.15"},
	} {
		f.clock.Advance(time.Second)
		if _, err := f.m.Record(ctx, u.user, budget.Usage{Provider: u.provider, Model: u.model, InputTokens: 100, OutputTokens: 10, Cost: budget.MustAmount(u.cost)}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Minute)
	return f
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes the response as a problem document.
func (r response) problem(t testing.TB) httpapi.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json; body %s", r.status, ct, r.body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v in a %d response", p, r.status)
	}
	return p
}

// json decodes a success body into a map.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return m
}

// req describes a request to the handler.
type req struct {
	method, path, token string
	body                string
	// contentType defaults to application/json when there is a body;
	// "-" sends none.
	contentType string
	header      map[string]string
	// chunked sends the body without a Content-Length.
	chunked bool
}

func (f *fixture) do(q req) response {
	f.t.Helper()
	return serve(f.h, q)
}

func serve(h http.Handler, q req) response {
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(q.method, q.path, body)
	if q.chunked {
		r.ContentLength = -1
	}
	switch {
	case q.contentType == "-":
	case q.contentType != "":
		r.Header.Set("Content-Type", q.contentType)
	case q.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// state is everything a request could change: every user's, team's and
// org's settings and status (memberships and model caps included), the
// audit log, the defaults and the templates.
type state struct {
	Users     []budget.UserStatus
	Teams     []budget.UserStatus
	Orgs      []budget.UserStatus
	Audit     []budget.AuditEntry
	Defaults  budget.Defaults
	Templates []budget.Template
}

func (f *fixture) state() state {
	f.t.Helper()
	ctx := context.Background()
	users, err := f.m.ListUsers(ctx, rootP, budget.UserQuery{Limit: budget.MaxPageSize})
	if err != nil {
		f.t.Fatal(err)
	}
	audit, err := f.m.AuditLog(ctx, rootP, budget.AuditLogQuery{Limit: budget.MaxPageSize})
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := f.m.Defaults(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	ts, err := f.m.Templates(ctx, rootP)
	if err != nil {
		f.t.Fatal(err)
	}
	teams, err := f.m.ListBudgets(ctx, rootP, budget.TeamScope, budget.UserQuery{Limit: budget.MaxPageSize})
	if err != nil {
		f.t.Fatal(err)
	}
	orgs, err := f.m.ListBudgets(ctx, rootP, budget.OrgScope, budget.UserQuery{Limit: budget.MaxPageSize})
	if err != nil {
		f.t.Fatal(err)
	}
	return state{Users: users.Users, Teams: teams.Users, Orgs: orgs.Users, Audit: audit.Entries, Defaults: d, Templates: ts}
}

var cmpDecimal = cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })

// diff describes how two states differ; empty when they are equal.
func diff(before, after state) string { return cmp.Diff(before, after, cmpDecimal) }

// settingsOf returns a user's settings as the Manager has them.
func (f *fixture) settingsOf(user string) budget.Settings {
	f.t.Helper()
	s, err := f.m.Settings(context.Background(), user)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }
