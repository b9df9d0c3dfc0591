package dashboard

import (
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func newHandler(t *testing.T) http.Handler {
	t.Helper()
	h, err := New(Options{APIBase: "/api/v1/budget"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func serve(h http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func TestServes(t *testing.T) {
	h := newHandler(t)
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/budget", "text/html; charset=utf-8", `src="assets/user.js"`},
		{"/admin/budget", "text/html; charset=utf-8", `src="../assets/admin.js"`},
		{"/assets/style.css", "text/css; charset=utf-8", ".badge-red"},
		{"/assets/common.js", "text/javascript; charset=utf-8", "sessionStorage"},
		{"/assets/charts.js", "text/javascript; charset=utf-8", "createElementNS"},
		{"/assets/user.js", "text/javascript; charset=utf-8", "/usage/history"},
		{"/assets/admin.js", "text/javascript; charset=utf-8", "/admin/configure"},
		{"/assets/fields.js", "text/javascript; charset=utf-8", "budget_visible_to_user"},
		{"/assets/usage.js", "text/javascript; charset=utf-8", "barChart"},
		{"/assets/groups.js", "text/javascript; charset=utf-8", "/admin/budgets"},
	} {
		w := serve(h, http.MethodGet, tc.path)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		checkCSP(t, tc.path, w.Header())
	}
	if w := serve(h, http.MethodHead, "/budget"); w.Code != http.StatusOK {
		t.Errorf("HEAD /budget: %d", w.Code)
	}
	if w := serve(h, http.MethodGet, "/budget"); !strings.Contains(w.Body.String(), `<meta name="budget-api" content="/api/v1/budget"/>`) {
		t.Errorf("the user page does not say where the API is:\n%s", w.Body.String())
	}
}

func checkCSP(t *testing.T, path string, hd http.Header) {
	t.Helper()
	csp := hd.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", path, csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("%s: CSP %q allows %q", path, csp, bad)
		}
	}
	if hd.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: no X-Content-Type-Options: nosniff", path)
	}
}

func TestNotFound(t *testing.T) {
	h := newHandler(t)
	for _, p := range []string{
		"/nope", "/budget/", "/budget/x", "/admin", "/admin/", "/admin/budget/x", "/assets/", "/assets/nope.js",
		"/assets/../pages/budget.html", "/pages/budget.html", "/assets/sub/x.js", "/BUDGET",
	} {
		w := serve(h, http.MethodGet, p)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
		checkCSP(t, p, w.Header())
	}
	if w := serve(h, http.MethodPost, "/budget"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /budget: %d, want 405", w.Code)
	}
	if w := serve(h, http.MethodGet, "/"); w.Code != http.StatusFound || w.Header().Get("Location") != "budget" {
		t.Errorf("GET /: %d to %q, want a redirect to budget", w.Code, w.Header().Get("Location"))
	}
}

func TestOptions(t *testing.T) {
	for _, bad := range []string{"", "api", "//evil.example/api", "ftp://x/api", "/api?x=1", `/api"><script>`, "https://user@x/api"} {
		if _, err := New(Options{APIBase: bad}); err == nil {
			t.Errorf("New(APIBase %q) succeeded", bad)
		}
	}
	h, err := New(Options{APIBase: "https://budget.example.com/api/v1/budget/"})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(h, http.MethodGet, "/budget")
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://budget.example.com;") {
		t.Errorf("CSP %q does not allow the API's origin", csp)
	}
	if !strings.Contains(w.Body.String(), `content="https://budget.example.com/api/v1/budget"`) {
		t.Error("the page does not carry the API base")
	}
}

// walkHTML parses a served page leniently and calls fn for each start
// element.
func walkHTML(t *testing.T, name, page string, fn func(xml.StartElement)) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			fn(se)
		}
	}
}

func attr(se xml.StartElement, name string) (string, bool) {
	for _, a := range se.Attr {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value, true
		}
	}
	return "", false
}

// TestPagesSafe: no inline script, no inline handlers or styles, every
// form control labelled.
func TestPagesSafe(t *testing.T) {
	h := newHandler(t)
	for _, p := range []string{"/budget", "/admin/budget"} {
		page := serve(h, http.MethodGet, p).Body.String()
		if strings.Contains(strings.ToLower(page), "javascript:") {
			t.Errorf("%s has a javascript: URL", p)
		}
		labels := map[string]bool{}
		var controls []string
		scripts := 0
		walkHTML(t, p, page, func(se xml.StartElement) {
			tag := strings.ToLower(se.Name.Local)
			for _, a := range se.Attr {
				n := strings.ToLower(a.Name.Local)
				if strings.HasPrefix(n, "on") {
					t.Errorf("%s: <%s> has an inline handler %s", p, tag, n)
				}
				if n == "style" {
					t.Errorf("%s: <%s> has an inline style", p, tag)
				}
			}
			switch tag {
			case "script":
				scripts++
				if src, ok := attr(se, "src"); !ok || src == "" {
					t.Errorf("%s: an inline <script>", p)
				}
			case "style":
				t.Errorf("%s: an inline <style>", p)
			case "label":
				if f, ok := attr(se, "for"); ok {
					labels[f] = true
				}
			case "input", "select", "textarea":
				if typ, _ := attr(se, "type"); typ == "hidden" {
					break
				}
				if _, ok := attr(se, "aria-label"); ok {
					break
				}
				id, _ := attr(se, "id")
				controls = append(controls, id)
			}
		})
		if scripts == 0 {
			t.Errorf("%s loads no script", p)
		}
		for _, id := range controls {
			if id == "" || !labels[id] {
				t.Errorf("%s: form control %q has no <label for>", p, id)
			}
		}
	}
}

// TestScriptsSafe scans the scripts for the ways of turning data into
// markup or code.
func TestScriptsSafe(t *testing.T) {
	banned := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\b|setTimeout\s*\(\s*["'\x60]|setInterval\s*\(\s*["'\x60]|createContextualFragment|DOMParser|srcdoc|\.on[a-z]+\s*=[^=]|setAttribute\(\s*["']on|javascript:|https?://(?:[a-z0-9-]+\.)+[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(files, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
			return err
		}
		n++
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			code := line
			if j := strings.Index(code, "//"); j >= 0 && !strings.Contains(code[:j], `"`) {
				code = code[:j] // a comment
			}
			if m := banned.FindString(code); m != "" && !strings.Contains(code, "http://www.w3.org/2000/svg") {
				t.Errorf("%s:%d: %q in %s", path, i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Errorf("scanned %d scripts", n)
	}
}

// TestNoExternalResources: the pages load nothing from elsewhere.
func TestNoExternalResources(t *testing.T) {
	h := newHandler(t)
	for _, p := range []string{"/budget", "/admin/budget"} {
		walkHTML(t, p, serve(h, http.MethodGet, p).Body.String(), func(se xml.StartElement) {
			for _, n := range []string{"src", "href"} {
				if v, ok := attr(se, n); ok && (strings.Contains(v, "//") || strings.HasPrefix(v, "/")) && !strings.HasPrefix(v, "#") {
					t.Errorf("%s: <%s %s=%q> is not relative", p, se.Name.Local, n, v)
				}
			}
		})
	}
}
