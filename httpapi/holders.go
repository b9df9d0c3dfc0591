package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/llmbudget/budget"
)

// The budgets of teams and orgs, and who belongs to them: admin endpoints
// over budget.UpdateBudget, BudgetSettings, BudgetStatus, ListBudgets,
// Members, SetMembership and SetTeamOrg. A team's path names it by
// {team_id}, an org's by {org_id}; problems about the path name those.
// A user sees a team's or an org's figures only in their own GET /status.

// pathScope is the team or org of kind that the path names, validated.
func pathScope(r *http.Request, kind budget.ScopeKind) (budget.Scope, error) {
	sc := budget.Scope{Kind: kind, ID: r.PathValue(idParam(kind))}
	return sc, sc.Validate()
}

// idParam is the name of the path parameter, and of the problem field,
// that names a holder of kind: "team_id", "org_id" or "user_id".
func idParam(kind budget.ScopeKind) string { return string(kind) + "_id" }

// noHolder is the 404 for a team or org without settings; field names
// where the request named it.
func noHolder(field string, sc budget.Scope) *Problem {
	return problem(http.StatusNotFound, ProblemNotFound, field,
		"no "+string(sc.Kind)+" "+sc.ID+": create it with PUT /admin/"+string(sc.Kind)+"s/{"+idParam(sc.Kind)+"}")
}

// holderSettings returns the settings of the team or org sc, for an admin,
// and a 404 naming field when it has none.
func (s *server) holderSettings(ctx context.Context, p budget.Principal, sc budget.Scope, field string) (budget.Settings, error) {
	set, err := s.m.BudgetSettings(ctx, p, sc)
	if errors.Is(err, budget.ErrNotFound) {
		return budget.Settings{}, noHolder(field, sc)
	}
	return set, err
}

// pathHolder is the subject of the usage routes of the team or org of kind
// that the path names; one without settings is a 404.
func (s *server) pathHolder(kind budget.ScopeKind) subject {
	return func(r *http.Request, p budget.Principal) (budget.Scope, error) {
		sc, err := pathScope(r, kind)
		if err != nil {
			return sc, err
		}
		_, err = s.holderSettings(r.Context(), p, sc, idParam(kind))
		return sc, err
	}
}

// GET /admin/budgets?kind=&q=&level=&limit=&cursor=
//
// The teams' or the orgs' budgets with their status, as GET /admin/list
// lists users; kind (team or org) is required. Members are not counted
// here: counting reads every user, which GET /admin/teams/{team_id} does
// for one team.
func (s *server) getBudgets(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	q, err := readQuery(r, "kind", fQ, fLevel, "limit", "cursor")
	if err != nil {
		return err
	}
	k, _ := q.get("kind")
	kind, err := holderKind("kind", k)
	if err != nil {
		return err
	}
	uq, err := q.userQuery()
	if err != nil {
		return err
	}
	page, err := s.m.ListBudgets(r.Context(), p, kind, uq)
	if err != nil {
		return err
	}
	out := budgetsJSON{Budgets: make([]budgetJSON, len(page.Users)), NextCursor: page.Next, Summary: budgetSummaryJSON{
		Budgets: page.Summary.Users, TotalLimit: money(page.Summary.TotalLimit),
		TotalSpent: money(page.Summary.TotalSpent), OverBudget: page.Summary.OverBudget,
	}}
	for i, u := range page.Users {
		st := u.Status
		if len(u.Settings.ModelCaps) > 0 {
			// The list has each holder's own figures; its caps' are
			// read with its status.
			if st, err = s.m.BudgetStatus(r.Context(), u.Settings.Scope()); err != nil {
				return err
			}
		}
		out.Budgets[i] = budgetOf(u.Settings, &st, 0)
	}
	return writeJSON(w, out)
}

// holderView returns the JSON of the team's or org's budget whose settings
// are set: with its status and its members counted.
func (s *server) holderView(ctx context.Context, p budget.Principal, set budget.Settings) (budgetJSON, error) {
	sc := set.Scope()
	st, err := s.m.BudgetStatus(ctx, sc)
	if err != nil {
		return budgetJSON{}, err
	}
	members, err := s.m.Members(ctx, p, sc)
	if err != nil {
		return budgetJSON{}, err
	}
	return budgetOf(set, &st, len(members)), nil
}

// GET /admin/teams/{team_id} and GET /admin/orgs/{org_id}
func (s *server) getHolder(kind budget.ScopeKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
		if _, err := readQuery(r); err != nil {
			return err
		}
		sc, err := pathScope(r, kind)
		if err != nil {
			return err
		}
		set, err := s.holderSettings(r.Context(), p, sc, idParam(kind))
		if err != nil {
			return err
		}
		v, err := s.holderView(r.Context(), p, set)
		if err != nil {
			return err
		}
		setETag(w, set.Version)
		return writeJSON(w, v)
	}
}

// PUT /admin/teams/{team_id} and PUT /admin/orgs/{org_id}: a partial update
// of the budget, creating it from the defaults (201) if there is none.
// If-Match is honoured as on PUT /admin/configure: a new budget is at
// version 1.
func (s *server) putHolder(kind budget.ScopeKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
		sc, err := pathScope(r, kind)
		if err != nil {
			return err
		}
		u, err := readHolderUpdate(w, r)
		if err != nil {
			return err
		}
		// Whether this PUT creates the budget decides only the status
		// code; the update itself is one atomic step in the Manager.
		_, err = s.m.BudgetSettings(r.Context(), p, sc)
		created := errors.Is(err, budget.ErrNotFound)
		if err != nil && !created {
			return err
		}
		set, err := s.m.UpdateBudget(r.Context(), p, sc, u)
		if err != nil {
			return err
		}
		v, err := s.holderView(r.Context(), p, set)
		if err != nil {
			return err
		}
		setETag(w, set.Version)
		if created {
			return writeJSONStatus(w, http.StatusCreated, v)
		}
		return writeJSON(w, v)
	}
}

// GET /admin/teams/{team_id}/members and GET /admin/orgs/{org_id}/members:
// a team's users; an org's users, then its teams; each in ID order.
func (s *server) getMembers(kind budget.ScopeKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
		if _, err := readQuery(r); err != nil {
			return err
		}
		sc, err := pathScope(r, kind)
		if err != nil {
			return err
		}
		if _, err := s.holderSettings(r.Context(), p, sc, idParam(kind)); err != nil {
			return err
		}
		ms, err := s.m.Members(r.Context(), p, sc)
		if err != nil {
			return err
		}
		return writeJSON(w, membersOf(ms))
	}
}

// member returns the team the path names and the settings of userID, a
// user with settings, for the routes that add a user to a team or remove
// one from it: an unknown team or user is a 404.
func (s *server) member(r *http.Request, p budget.Principal, userID string) (budget.Scope, budget.Settings, error) {
	team, err := pathScope(r, budget.TeamScope)
	if err != nil {
		return team, budget.Settings{}, err
	}
	if err := budget.ValidateUserID(userID); err != nil {
		return team, budget.Settings{}, err
	}
	if _, err := s.holderSettings(r.Context(), p, team, idParam(budget.TeamScope)); err != nil {
		return team, budget.Settings{}, err
	}
	set, err := s.lookup(r.Context(), p, userID)
	return team, set, err
}

// POST /admin/teams/{team_id}/members {"user_id": "bob"}: puts bob in the
// team, keeping his other teams and his org, and answers his membership.
// The change is made on his settings as stored when it commits
// (budget.AddToTeam), so a concurrent change of his membership is kept.
func (s *server) postMember(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	o, err := readObject(w, r, memberBody, false)
	if err != nil {
		return err
	}
	userID, err := o.requiredStr(fUserID, "name the user to add to the team")
	if err != nil {
		return err
	}
	team, set, err := s.member(r, p, userID)
	if err != nil {
		return err
	}
	ns, err := s.m.AddToTeam(r.Context(), p, set.UserID, team.ID)
	if err != nil {
		return err
	}
	setETag(w, ns.Version)
	return writeJSON(w, membershipOf(ns))
}

// DELETE /admin/teams/{team_id}/members/{user_id}: takes the user out of
// the team (204) with budget.RemoveFromTeam, which keeps a concurrent
// change of the user's membership; a user who is not in it is a 404.
func (s *server) deleteMember(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	team, set, err := s.member(r, p, r.PathValue("user_id"))
	if err != nil {
		return err
	}
	notMember := problem(http.StatusNotFound, ProblemNotFound, fUserID, set.UserID+" is not in the team "+team.ID)
	if !slices.Contains(set.Teams, team.ID) {
		return notMember
	}
	if _, err := s.m.RemoveFromTeam(r.Context(), p, set.UserID, team.ID); errors.Is(err, budget.ErrNotFound) {
		return notMember // taken out meanwhile
	} else if err != nil {
		return err
	}
	writeNoContent(w)
	return nil
}

// PUT /admin/users/{user_id}/membership {"teams": [...], "org": "..."}:
// sets where a user with settings belongs, whole (a member left out is
// none), and answers the membership with the user's settings ETag.
//
// If-Match is the user's settings ETag, compared in the same step as the
// change (budget.Membership.IfVersion).
func (s *server) putMembership(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	pc, err := ifMatch(r)
	if err != nil {
		return err
	}
	o, err := readObject(w, r, membershipBody, false)
	if err != nil {
		return err
	}
	ms, err := readMembership(o)
	if err != nil {
		return err
	}
	set, err := s.lookup(r.Context(), p, r.PathValue("user_id"))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, t := range ms.Teams {
		if seen[t] { // a repeat is read once
			continue
		}
		seen[t] = true
		if _, err := s.holderSettings(r.Context(), p, budget.Team(t), fTeams+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	if ms.Org != "" {
		if _, err := s.holderSettings(r.Context(), p, budget.Org(ms.Org), fOrg); err != nil {
			return err
		}
	}
	ms.IfVersion = pc.ifVersion(1)
	ns, err := s.m.SetMembership(r.Context(), p, set.UserID, ms)
	if err != nil {
		return err
	}
	setETag(w, ns.Version)
	return writeJSON(w, membershipOf(ns))
}

// PUT /admin/teams/{team_id}/org {"org": "acme"}: puts the team in an org,
// or takes it out with "org": "". A team in one org must be taken out
// before it is put in another (400). Answers the team as GET does.
func (s *server) putTeamOrg(w http.ResponseWriter, r *http.Request, p budget.Principal) error {
	if _, err := readQuery(r); err != nil {
		return err
	}
	team, err := pathScope(r, budget.TeamScope)
	if err != nil {
		return err
	}
	o, err := readObject(w, r, teamOrgBody, false)
	if err != nil {
		return err
	}
	if _, ok := o[fOrg]; !ok {
		return invalid(fOrg, `name the org, or "" to take the team out of its org`)
	}
	org, err := o.orgID()
	if err != nil {
		return err
	}
	if _, err := s.holderSettings(r.Context(), p, team, idParam(budget.TeamScope)); err != nil {
		return err
	}
	if org != "" {
		if _, err := s.holderSettings(r.Context(), p, budget.Org(org), fOrg); err != nil {
			return err
		}
	}
	set, err := s.m.SetTeamOrg(r.Context(), p, team.ID, org)
	if err != nil {
		return err
	}
	v, err := s.holderView(r.Context(), p, set)
	if err != nil {
		return err
	}
	setETag(w, set.Version)
	return writeJSON(w, v)
}
