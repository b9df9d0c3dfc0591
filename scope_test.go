package budget

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// matchByRegexp is MatchModel's reference: the pattern as an anchored
// regular expression, '*' as ".*" and '?' as ".".
func matchByRegexp(pattern, model string) bool {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String()).MatchString(model)
}

func TestMatchModel(t *testing.T) {
	for _, c := range []struct {
		pattern, model string
		want           bool
	}{
		{"claude-opus-*", "claude-opus-4-1", true},
		{"claude-opus-*", "claude-opus-4-5", true},
		{"claude-opus-*", "claude-sonnet-4", false},
		{"claude-opus-*", "claude-opus-", true},
		{"claude-opus-*", "xclaude-opus-4", false},
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o", "gpt-4o-mini", false},
		{"gpt-4o*", "gpt-4o-mini", true},
		{"gpt-?o", "gpt-4o", true},
		{"gpt-?o", "gpt-40o", false},
		{"*-mini", "gpt-4o-mini", true},
		{"*", "", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"模型-?", "模型-中", true},
		{"GPT-4o", "gpt-4o", false},
		{"anthropic/*", "anthropic/claude-3", true},
	} {
		if got := MatchModel(c.pattern, c.model); got != c.want {
			t.Errorf("MatchModel(%q, %q) = %v, want %v", c.pattern, c.model, got, c.want)
		}
		if ref := matchByRegexp(c.pattern, c.model); ref != c.want {
			t.Errorf("reference disagrees with the table for (%q, %q)", c.pattern, c.model)
		}
	}
}

// FuzzMatchModel checks MatchModel against the regular-expression reference
// for every valid pattern.
func FuzzMatchModel(f *testing.F) {
	f.Add("claude-opus-*", "claude-opus-4-1")
	f.Add("gpt-?o*", "gpt-4o-mini")
	f.Add("*a*?b", "aaab")
	f.Add("?", "é")
	f.Fuzz(func(t *testing.T, pattern, model string) {
		if ValidatePattern(pattern) != nil || !utf8.ValidString(model) {
			return
		}
		if got, want := MatchModel(pattern, model), matchByRegexp(pattern, model); got != want {
			t.Fatalf("MatchModel(%q, %q) = %v, reference %v", pattern, model, got, want)
		}
	})
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{"claude-opus-*", "gpt-4o", "?", "*", "anthropic/*", "a.b_c:d"} {
		if err := ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "gpt 4o", "gpt\x00", "gpt-[45]o", `gpt\*`, "a]", strings.Repeat("a", MaxPatternLen+1), "\xff"} {
		var ve *ValidationError
		if err := ValidatePattern(p); !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || ve.Field != "pattern" {
			t.Errorf("ValidatePattern(%q) = %v, want a pattern ValidationError", p, err)
		}
	}
}

func TestValidateModelCaps(t *testing.T) {
	ok := []ModelCap{{"claude-opus-*", decimal.NewFromInt(50)}, {"gpt-4o*", MustAmount("0.5")}}
	if err := ValidateModelCaps(ok); err != nil {
		t.Fatal(err)
	}
	many := make([]ModelCap, MaxModelCaps+1)
	for i := range many {
		many[i] = ModelCap{Pattern: strings.Repeat("m", i+1), Limit: decimal.NewFromInt(1)}
	}
	for _, c := range []struct {
		caps  []ModelCap
		field string
	}{
		{[]ModelCap{{"gpt-[4]o", decimal.NewFromInt(1)}}, "model_caps[0].pattern"},
		{[]ModelCap{{"gpt-4o", decimal.NewFromInt(1)}, {"x", decimal.NewFromInt(-1)}}, "model_caps[1].limit_usd"},
		{[]ModelCap{{"x", decimal.New(1, -10)}}, "model_caps[0].limit_usd"},
		{[]ModelCap{{"x", decimal.NewFromInt(1)}, {"x", decimal.NewFromInt(2)}}, "model_caps[1].pattern"},
		{many, "model_caps"},
	} {
		var ve *ValidationError
		if err := ValidateModelCaps(c.caps); !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("ValidateModelCaps(%v) = %v, want field %s", c.caps, err, c.field)
		}
	}
}

func TestScopeKeys(t *testing.T) {
	scopes := []Scope{User("alice"), User("team:research"), Team("research"), Org("research"), Team("a:b"), User("x/y")}
	seen := map[string]Scope{}
	for _, s := range scopes {
		if err := s.Validate(); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		for _, k := range []string{s.Key(), s.CapKey("gpt-4o*")} {
			if prev, dup := seen[k]; dup {
				t.Fatalf("%v and %v share key %q", prev, s, k)
			}
			seen[k] = s
		}
		if got, pat := ScopeOfKey(s.Key()); got != s || pat != "" {
			t.Errorf("ScopeOfKey(%q) = %v, %q; want %v", s.Key(), got, pat, s)
		}
		if got, pat := ScopeOfKey(s.CapKey("gpt-4o*")); got != s || pat != "gpt-4o*" {
			t.Errorf("ScopeOfKey(cap of %v) = %v, %q", s, got, pat)
		}
		if got := HolderKey(s.CapKey("gpt-4o*")); got != s.Key() {
			t.Errorf("HolderKey(cap of %v) = %q, want %q", s, got, s.Key())
		}
		if got := HolderKey(s.Key()); got != "" {
			t.Errorf("HolderKey(%q) = %q, want none: not a cap's key", s.Key(), got)
		}
		if back, err := ParseScope(s.String()); err != nil || back != s {
			t.Errorf("ParseScope(%q) = %v, %v", s.String(), back, err)
		}
	}
	if got := User("alice").Key(); got != "alice" {
		t.Errorf("a user's key is %q, want the user ID", got)
	}
	for _, k := range []string{Team("zzz").Key(), Org("~").Key(), User("a").CapKey("b")} {
		if k >= " " && !strings.Contains(k, keySep) {
			t.Errorf("key %q is not marked as a non-user key", k)
		}
	}
	if Team("zzz").Key() >= User("!").Key() {
		t.Error("team keys must sort before every user ID")
	}
}

func TestParseScopeRefuses(t *testing.T) {
	for _, s := range []string{"", "alice", "group:x", "team:", "org:..", "team:a\x01b", "user:" + strings.Repeat("a", MaxUserIDLen+1)} {
		if _, err := ParseScope(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseScope(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestMembershipNormalize(t *testing.T) {
	m, err := Membership{Teams: []string{"b", "a", "b"}, Org: "acme"}.normalize()
	if err != nil || strings.Join(m.Teams, ",") != "a,b" || m.Org != "acme" {
		t.Fatalf("normalize = %+v, %v", m, err)
	}
	too := make([]string, MaxTeamsPerUser+1)
	for i := range too {
		too[i] = strings.Repeat("t", i+1)
	}
	for _, c := range []struct {
		m     Membership
		field string
	}{
		{Membership{Teams: too}, "teams"},
		{Membership{Teams: []string{"ok", ""}}, "team_id"},
		{Membership{Org: ".."}, "org_id"},
	} {
		var ve *ValidationError
		if _, err := c.m.normalize(); !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("normalize(%+v) = %v, want field %s", c.m, err, c.field)
		}
	}
}
