package budget

import "testing"

func TestEscapeCell(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"", ""},
		{"alice", "alice"},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'x", "''x"},
		{"a=b", "a=b"},
		{" =x", " =x"},
		{"é=", "é="},
	} {
		if got := escapeCell(c.in); got != c.out {
			t.Errorf("escapeCell(%q) = %q, want %q", c.in, got, c.out)
		}
		if back := unescapeCell(escapeCell(c.in)); back != c.in {
			t.Errorf("unescapeCell(escapeCell(%q)) = %q", c.in, back)
		}
	}
}

func TestParseFloatText(t *testing.T) {
	for _, c := range []struct {
		in      string
		places  int32
		out     string
		rounded bool
		bad     bool
	}{
		{"30", 9, "30", false, false},
		{"30.0", 9, "30", false, false},
		{"0.1", 9, "0.1", false, false},
		{"29.999999999999996", 9, "30", true, false},
		{"1e-05", 9, "0.00001", false, false},
		{"1.5E+2", 9, "150", false, false},
		{"0.0000000005", 9, "0.000000001", true, false}, // half away from zero
		{"0.00000000049", 9, "0", true, false},
		{"1e-400", 9, "0", true, false},
		{"33.333333333333336", 2, "33.33", true, false},
		{"-0.0", 9, "0", false, false},
		{"+2", 9, "2", false, false},
		{"-1", 9, "", false, true},
		{"inf", 9, "", false, true},
		{"NaN", 9, "", false, true},
		{"1e401", 9, "", false, true},
		{"1e99999999999", 9, "", false, true},
		{"0x1p3", 9, "", false, true},
		{"", 9, "", false, true},
		{".", 9, "", false, true},
		{"1,5", 9, "", false, true},
	} {
		d, rounded, err := parseFloatText(c.in, c.places)
		if (err != nil) != c.bad {
			t.Errorf("%q: error %v", c.in, err)
			continue
		}
		if c.bad {
			continue
		}
		if !d.Equal(MustAmount(c.out)) || rounded != c.rounded {
			t.Errorf("%q: %s (rounded %v), want %s (%v)", c.in, d, rounded, c.out, c.rounded)
		}
	}
}

func TestParseSeedTime(t *testing.T) {
	for in, want := range map[string]string{
		"2025-12-14 10:30:00":        "2025-12-14T10:30:00Z",
		"2025-12-14 10:30:00.123456": "2025-12-14T10:30:00.123456Z",
		"2025-12-14T10:30:00":        "2025-12-14T10:30:00Z",
		"2025-12-14T10:30:00+01:00":  "2025-12-14T09:30:00Z",
		"2025-12-14 10:30:00+01:00":  "2025-12-14T09:30:00Z",
		"2025-12-14":                 "2025-12-14T00:00:00Z",
	} {
		got, err := parseSeedTime(in)
		if err != nil || got.Format("2006-01-02T15:04:05.999999999Z07:00") != want {
			t.Errorf("%q: %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseSeedTime("14/12/2025"); err == nil {
		t.Error("a day-first date parsed")
	}
}
