package budget

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// ScopeKind says what kind of holder a budget belongs to.
type ScopeKind string

// The kinds of budget holders. A user belongs to any number of teams (up
// to MaxTeamsPerUser) and to at most one org; a team belongs to at most one
// org. Each holder has its own budget, and a call by a user spends all the
// budgets that apply to it at once.
const (
	UserScope ScopeKind = "user"
	TeamScope ScopeKind = "team"
	OrgScope  ScopeKind = "org"
)

// Scope names one budget holder: a user, a team or an org.
type Scope struct {
	Kind ScopeKind
	ID   string
}

// User returns the scope of a user's own budget.
func User(id string) Scope { return Scope{UserScope, id} }

// Team returns the scope of a team's budget.
func Team(id string) Scope { return Scope{TeamScope, id} }

// Org returns the scope of an org's budget.
func Org(id string) Scope { return Scope{OrgScope, id} }

// String returns "kind:id", e.g. "team:research"; ParseScope reads it back.
func (s Scope) String() string { return string(s.Kind) + ":" + s.ID }

// Validate reports whether s names a holder: a known kind and an ID that
// ValidateUserID accepts (the same rule for every kind).
func (s Scope) Validate() error {
	switch s.Kind {
	case UserScope, TeamScope, OrgScope:
	default:
		return &ValidationError{Field: "scope", Reason: fmt.Sprintf("%q is not user, team or org", s.Kind)}
	}
	if err := ValidateUserID(s.ID); err != nil {
		return &ValidationError{Field: string(s.Kind) + "_id", Reason: err.(*ValidationError).Reason}
	}
	return nil
}

// ParseScope reads "user:alice", "team:research" or "org:acme". Anything
// else is an error wrapping ErrInvalid.
func ParseScope(text string) (Scope, error) {
	kind, id, ok := strings.Cut(text, ":")
	if !ok {
		return Scope{}, &ValidationError{Field: "scope", Reason: `must be "user:<id>", "team:<id>" or "org:<id>"`}
	}
	s := Scope{ScopeKind(kind), id}
	return s, s.Validate()
}

// keySep separates the parts of a budget key. It is a control character,
// which no user, team or org ID and no cap pattern contains, so keys of
// different holders never collide.
const keySep = "\x1f"

// Key returns the key a store keeps the budget of s under. A user's key is
// the user ID itself, so budgets stored before teams existed keep their
// keys; a team's or org's key starts with keySep, so it can be no user's,
// and all such keys sort before every user ID in byte order.
func (s Scope) Key() string {
	if s.Kind == UserScope {
		return s.ID
	}
	return keySep + string(s.Kind) + ":" + s.ID
}

// CapKey returns the key of the counter that a model cap with pattern
// keeps for the holder s.
func (s Scope) CapKey(pattern string) string { return s.Key() + keySep + pattern }

// HolderKey returns the key of the holder of the model cap whose counter
// is under key (see Scope.CapKey), or "" when key is no cap's.
func HolderKey(key string) string {
	from := 0
	if strings.HasPrefix(key, keySep) {
		from = len(keySep)
	}
	i := strings.Index(key[from:], keySep)
	if i < 0 {
		return ""
	}
	return key[:from+i]
}

// ScopeOfKey returns the holder whose budget key is key, and the cap
// pattern when key is a cap's (see Scope.Key and Scope.CapKey).
func ScopeOfKey(key string) (s Scope, pattern string) {
	if rest, ok := strings.CutPrefix(key, keySep); ok {
		head, pat, _ := strings.Cut(rest, keySep)
		kind, id, _ := strings.Cut(head, ":")
		return Scope{ScopeKind(kind), id}, pat
	}
	id, pat, _ := strings.Cut(key, keySep)
	return User(id), pat
}

// Limits on scopes, so that one call locks a bounded number of budgets.
const (
	// MaxTeamsPerUser is how many teams a user may belong to.
	MaxTeamsPerUser = 8
	// MaxModelCaps is how many model caps one holder may have.
	MaxModelCaps = 16
	// MaxPatternLen bounds a model cap's pattern, in bytes.
	MaxPatternLen = 128
)

// ModelCap limits the spend on the models whose name matches Pattern,
// counted in its holder's period: every matching model spends the one cap
// (claude-opus-* pools claude-opus-4-1 and claude-opus-4-5). A call may
// match several caps of a holder; each must pass.
type ModelCap struct {
	// Pattern is matched against the model name as the call names it
	// (see MatchModel). The provider is not part of the name: to cap one
	// provider, name its model families (claude-*).
	Pattern string
	// Limit is the spend allowed per period on the matching models.
	Limit decimal.Decimal
}

// ValidatePattern reports whether p can be a model cap's pattern: 1 to
// MaxPatternLen bytes of UTF-8 without control characters or spaces, in
// which '*' stands for any run of characters (none included) and '?' for
// any one character. No other character is special, and '[', ']' and '\'
// are refused so that no pattern is read as another glob dialect's class
// or escape.
func ValidatePattern(p string) error {
	switch {
	case p == "" || len(p) > MaxPatternLen:
		return &ValidationError{Field: "pattern", Reason: fmt.Sprintf("must be 1 to %d bytes", MaxPatternLen)}
	case !utf8.ValidString(p):
		return &ValidationError{Field: "pattern", Reason: "must be UTF-8"}
	case strings.ContainsFunc(p, func(r rune) bool { return isControl(r) || r == ' ' }):
		return &ValidationError{Field: "pattern", Reason: "must not contain spaces or control characters"}
	case strings.ContainsAny(p, `[]\`):
		return &ValidationError{Field: "pattern", Reason: `'[', ']' and '\' are not pattern characters; use '*' and '?'`}
	}
	return nil
}

// MatchModel reports whether model matches pattern: '*' matches any run of
// characters, '?' any one character (a rune), and every other character
// itself, case-sensitively. The whole name must match. It runs in
// O(len(pattern) × len(model)) time at worst, whatever the pattern.
func MatchModel(pattern, model string) bool {
	// The classic greedy matcher with one backtrack point: on a mismatch,
	// let the last '*' swallow one more character.
	p, m := 0, 0
	star, mark := -1, 0
	for m < len(model) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				star, mark = p, m
				p++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(model[m:])
				p, m = p+1, m+n
				continue
			default:
				if c == model[m] {
					p, m = p+1, m+1
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(model[mark:])
		mark += n
		p, m = star+1, mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ValidateModelCaps reports whether caps can be a holder's model caps: at
// most MaxModelCaps, each with a valid pattern and limit, no pattern twice.
func ValidateModelCaps(caps []ModelCap) error {
	if len(caps) > MaxModelCaps {
		return &ValidationError{Field: "model_caps", Reason: fmt.Sprintf("at most %d model caps per budget", MaxModelCaps)}
	}
	for i, c := range caps {
		if err := ValidatePattern(c.Pattern); err != nil {
			return &ValidationError{Field: fmt.Sprintf("model_caps[%d].pattern", i), Reason: err.(*ValidationError).Reason}
		}
		if _, err := ToNanos(c.Limit); err != nil {
			return &ValidationError{Field: fmt.Sprintf("model_caps[%d].limit_usd", i), Reason: strings.TrimPrefix(err.Error(), "budget: ")}
		}
		if slices.ContainsFunc(caps[:i], func(d ModelCap) bool { return d.Pattern == c.Pattern }) {
			return &ValidationError{Field: fmt.Sprintf("model_caps[%d].pattern", i), Reason: fmt.Sprintf("%q is capped twice", c.Pattern)}
		}
	}
	return nil
}

// Membership is where a user belongs: any number of teams, up to
// MaxTeamsPerUser, and at most one org ("" for none).
type Membership struct {
	Teams []string
	Org   string
	// IfVersion, when non-zero, makes SetMembership conditional: it is
	// refused with ErrConflict unless the user's settings are still at
	// this version, compared in the same step as the change (the HTTP
	// If-Match).
	IfVersion int64
}

// normalize returns m with its teams sorted and without repeats, or an
// error wrapping ErrInvalid naming the first bad field.
func (m Membership) normalize() (Membership, error) {
	teams := slices.Clone(m.Teams)
	slices.Sort(teams)
	teams = slices.Compact(teams)
	if len(teams) > MaxTeamsPerUser {
		return Membership{}, &ValidationError{Field: "teams", Reason: fmt.Sprintf("a user may belong to at most %d teams", MaxTeamsPerUser)}
	}
	for _, t := range teams {
		if err := Team(t).Validate(); err != nil {
			return Membership{}, err
		}
	}
	if m.Org != "" {
		if err := Org(m.Org).Validate(); err != nil {
			return Membership{}, err
		}
	}
	return Membership{Teams: teams, Org: m.Org, IfVersion: m.IfVersion}, nil
}
