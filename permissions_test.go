package budget

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// permAction is one thing a principal may try on alice's budget.
type permAction struct {
	name  string
	field string // for a refused update the user may never make, or needs CanModify for
	do    func(Principal, Settings) error
}

func permUpdate(name, field string, u SettingsUpdate) permAction {
	return permAction{name: "update " + name, field: field, do: func(p Principal, s Settings) error { return CanUpdate(p, s, u) }}
}

var (
	permDec    = decimal.NewFromInt(80)
	permPeriod = Weekly
	permDays   = 7
	permAnchor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	permTZ     = "Europe/Paris"
	permBool   = true
	permNotes  = "note"
)

// permActions are the actions TestPermissions tries, by the names its
// expectations use.
var permActions = map[string]permAction{
	"view":          {name: "view", do: CanView},
	"reset":         {name: "reset", do: CanReset},
	"administer":    {name: "administer", do: func(p Principal, _ Settings) error { return CanAdminister(p) }},
	"update none":   permUpdate("none", "", SettingsUpdate{}),
	"update if":     permUpdate("if-version only", "", SettingsUpdate{IfVersion: 3}),
	"update limit":  permUpdate("limit", "limit_usd", SettingsUpdate{Limit: &permDec}),
	"update period": permUpdate("period", "budget_period", SettingsUpdate{Period: &permPeriod}),
	"update days":   permUpdate("custom days", "custom_period_days", SettingsUpdate{CustomDays: &permDays}),
	"update anchor": permUpdate("custom anchor", "custom_period_anchor", SettingsUpdate{CustomAnchor: &permAnchor}),
	"update tz":     permUpdate("timezone", "timezone", SettingsUpdate{Timezone: &permTZ}),
	"update enf":    permUpdate("enforce", "enforce_budget", SettingsUpdate{Enforce: &permBool}),
	"update yellow": permUpdate("yellow", "alert_threshold_yellow", SettingsUpdate{Yellow: &permDec}),
	"update orange": permUpdate("orange", "alert_threshold_orange", SettingsUpdate{Orange: &permDec}),
	"update red":    permUpdate("red", "alert_threshold_red", SettingsUpdate{Red: &permDec}),
	"update vis":    permUpdate("visible", "permissions", SettingsUpdate{Visible: &permBool}),
	"update mod":    permUpdate("can modify", "permissions", SettingsUpdate{CanModify: &permBool}),
	"update rst":    permUpdate("can reset", "permissions", SettingsUpdate{CanReset: &permBool}),
	"update notes":  permUpdate("admin notes", "admin_notes", SettingsUpdate{AdminNotes: &permNotes}),
}

// TestPermissions checks every principal × permission combination × action
// against outcomes written out by hand. Each expected string has one letter
// per combination of alice's permissions, in the order
//
//	Visible:   -  -  -  -  V  V  V  V
//	CanModify: -  -  M  M  -  -  M  M
//	CanReset:  -  R  -  R  -  R  -  R
//
// where a means allowed, h refused because the budget is hidden, and f
// refused for any other reason.
func TestPermissions(t *testing.T) {
	principals := map[string]Principal{
		"admin":           {UserID: "root", Admin: true},
		"admin as owner":  {UserID: "alice", Admin: true},
		"owner":           {UserID: "alice"},
		"other user":      {UserID: "bob"},
		"other, no id":    {},
		"owner, case off": {UserID: "Alice"},
	}
	expect := map[string]map[string]string{
		"admin": {
			"view": "aaaaaaaa", "reset": "aaaaaaaa", "administer": "aaaaaaaa",
			"update none": "aaaaaaaa", "update if": "aaaaaaaa",
			"update limit": "aaaaaaaa", "update period": "aaaaaaaa", "update days": "aaaaaaaa",
			"update anchor": "aaaaaaaa", "update tz": "aaaaaaaa", "update enf": "aaaaaaaa",
			"update yellow": "aaaaaaaa", "update orange": "aaaaaaaa", "update red": "aaaaaaaa",
			"update vis": "aaaaaaaa", "update mod": "aaaaaaaa", "update rst": "aaaaaaaa",
			"update notes": "aaaaaaaa",
		},
		"owner": {
			"view": "hhhhaaaa", "reset": "hhhhfafa", "administer": "ffffffff",
			"update none": "hhhhaaaa", "update if": "hhhhaaaa",
			"update limit": "hhhhffaa", "update period": "hhhhffaa", "update days": "hhhhffaa",
			"update anchor": "hhhhffaa", "update tz": "hhhhffaa", "update enf": "hhhhffaa",
			// The thresholds define the level admins see: view-only
			// users cannot redefine it (the seed's rule).
			"update yellow": "hhhhffaa", "update orange": "hhhhffaa", "update red": "hhhhffaa",
			"update vis": "hhhhffff", "update mod": "hhhhffff", "update rst": "hhhhffff",
			"update notes": "hhhhffff",
		},
		"other user": {
			"view": "ffffffff", "reset": "ffffffff", "administer": "ffffffff",
			"update none": "ffffffff", "update if": "ffffffff",
			"update limit": "ffffffff", "update period": "ffffffff", "update days": "ffffffff",
			"update anchor": "ffffffff", "update tz": "ffffffff", "update enf": "ffffffff",
			"update yellow": "ffffffff", "update orange": "ffffffff", "update red": "ffffffff",
			"update vis": "ffffffff", "update mod": "ffffffff", "update rst": "ffffffff",
			"update notes": "ffffffff",
		},
	}
	expect["admin as owner"] = expect["admin"]
	expect["other, no id"] = expect["other user"]
	expect["owner, case off"] = expect["other user"]

	wantAction := func(name string) string {
		if strings.HasPrefix(name, "update ") {
			return "update"
		}
		return name
	}
	for _, pname := range slices.Sorted(maps.Keys(principals)) {
		p := principals[pname]
		for _, aname := range slices.Sorted(maps.Keys(permActions)) {
			act := permActions[aname]
			want := expect[pname][aname]
			if len(want) != 8 {
				t.Fatalf("no expectation for %s / %s", pname, aname)
			}
			for i := 0; i < 8; i++ {
				s := Settings{UserID: "alice"}
				s.Visible, s.CanModify, s.CanReset = i&4 != 0, i&2 != 0, i&1 != 0
				name := fmt.Sprintf("%s/%s/visible=%v,modify=%v,reset=%v", pname, act.name, s.Visible, s.CanModify, s.CanReset)
				t.Run(name, func(t *testing.T) {
					err := act.do(p, s)
					switch want[i] {
					case 'a':
						if err != nil {
							t.Fatalf("refused: %v", err)
						}
						return
					case 'h', 'f':
					default:
						t.Fatalf("bad expectation %q", want[i])
					}
					if err == nil {
						t.Fatal("allowed, want refused")
					}
					if !errors.Is(err, ErrForbidden) {
						t.Errorf("errors.Is(%v, ErrForbidden) = false", err)
					}
					var pe *PermissionError
					if !errors.As(err, &pe) {
						t.Fatalf("errors.As(%v, *PermissionError) = false", err)
					}
					if hidden := want[i] == 'h'; pe.Hidden != hidden {
						t.Errorf("Hidden = %v, want %v (%v)", pe.Hidden, hidden, err)
					}
					if a := wantAction(aname); pe.Action != a {
						t.Errorf("Action = %q, want %q", pe.Action, a)
					}
					// An owner refused a field of a visible budget is told which.
					if pname == "owner" && s.Visible && pe.Field != act.field {
						t.Errorf("Field = %q, want %q", pe.Field, act.field)
					}
					if pe.Reason == "" || err.Error() == "" {
						t.Errorf("no reason given: %q", err.Error())
					}
				})
			}
		}
	}
}

// TestCanUpdateSeveralFields checks updates of more than one field: one
// field the user may not change refuses the whole update.
func TestCanUpdateSeveralFields(t *testing.T) {
	owner := Principal{UserID: "alice"}
	viewOnly := Settings{UserID: "alice", Plan: Plan{Permissions: Permissions{Visible: true}}}
	modify := Settings{UserID: "alice", Plan: Plan{Permissions: Permissions{Visible: true, CanModify: true}}}
	tests := []struct {
		name  string
		s     Settings
		u     SettingsUpdate
		field string // "" when allowed
	}{
		{"thresholds only without CanModify", viewOnly, SettingsUpdate{Yellow: &permDec, Orange: &permDec, Red: &permDec}, "alert_threshold_yellow"},
		{"thresholds only with CanModify", modify, SettingsUpdate{Yellow: &permDec, Orange: &permDec, Red: &permDec}, ""},
		{"threshold and limit without CanModify", viewOnly, SettingsUpdate{Yellow: &permDec, Limit: &permDec}, "limit_usd"},
		{"threshold and limit with CanModify", modify, SettingsUpdate{Yellow: &permDec, Limit: &permDec}, ""},
		{"every plan field with CanModify", modify, SettingsUpdate{Limit: &permDec, Period: &permPeriod, CustomDays: &permDays,
			CustomAnchor: &permAnchor, Timezone: &permTZ, Enforce: &permBool, Yellow: &permDec, Orange: &permDec, Red: &permDec}, ""},
		{"limit and notes with CanModify", modify, SettingsUpdate{Limit: &permDec, AdminNotes: &permNotes}, "admin_notes"},
		{"timezone and visible with CanModify", modify, SettingsUpdate{Timezone: &permTZ, Visible: &permBool}, "permissions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CanUpdate(owner, tt.s, tt.u)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *PermissionError
			if !errors.As(err, &pe) || !errors.Is(err, ErrForbidden) {
				t.Fatalf("CanUpdate = %v, want a *PermissionError wrapping ErrForbidden", err)
			}
			if pe.Field != tt.field || pe.Hidden {
				t.Errorf("Field = %q, Hidden = %v; want %q, false", pe.Field, pe.Hidden, tt.field)
			}
		})
	}
}
