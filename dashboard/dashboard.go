// Package dashboard serves a small web dashboard for the budget HTTP API: a
// page for users (budget) and one for admins (admin/budget), built from
// embedded HTML, CSS and JavaScript with no framework and nothing loaded
// from elsewhere.
//
// The host decides where the dashboard is mounted and how requests
// authenticate. The pages themselves are public; they ask for a bearer
// token, keep it in sessionStorage and send it in the Authorization header
// of every API call, never in a URL:
//
//	d, err := dashboard.New(dashboard.Options{APIBase: "/api/v1/budget"})
//	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", d))
//
// Paths are relative to the mount point:
//
//	GET /budget          the user's page
//	GET /admin/budget    the admin page
//	GET /assets/{file}   stylesheet and scripts
//
// The user's page links to the admin page when GET /me says the caller is
// an admin; the admin page links back. The user's page shows one card per
// budget that applies to the user's calls (their own, their teams', their
// org's, model caps; GET /status "budgets"), the binding one first and
// marked, and says which budget refuses calls once it has nothing left.
// The admin page opens with the switch that turns budgets on or off for
// every regular user at once (PUT /admin/access), and has bulk changes,
// teams and orgs (their plans, model caps, members, spending and audit
// entries), templates, each user's usage and a readable audit log. Below
// 600 px wide the tables become stacked cards, so every action stays
// within reach on a phone.
//
// Insights: the user's page warns in a banner at its top when the budget
// that binds is at orange ("Calls will be refused when …") or red ("Calls
// are being refused until …", with the reset time), states the forecast
// (GET /status "forecast") in one sentence, and draws the spend per day of
// the current period (GET /usage/daily) as an SVG bar chart with the
// previous period behind and the limit's even pace as a line. The admin
// page shows the same chart and sentence in a user's usage dialog. Both
// offer CSV downloads (the history; the admin's audit log with its
// filters, and a user's history), fetched with the token and saved from a
// blob, so that the token never goes in a URL.
//
// The pages put user IDs and template names in API paths percent-encoded,
// "." included. An ID that is only "." or ".." cannot be sent in a path
// from a browser at all (URL parsing reads "%2E" as a dot segment), so
// the admin page refuses to act on such a user and says why.
//
// Every response carries a Content-Security-Policy that allows scripts and
// styles from the same origin only (no inline script, no inline event
// handlers, no inline styles) and API calls to the same origin, or to the
// origin of an absolute APIBase.
package dashboard

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
)

//go:embed assets pages
var files embed.FS

// Options configure the dashboard.
type Options struct {
	// APIBase is where the budget API (httpapi) is mounted, as the pages
	// see it: a path on the same origin ("/api/v1/budget") or an absolute
	// http(s) URL. Required.
	APIBase string
}

type handler struct {
	pages  map[string][]byte // by path: "/budget", "/admin/budget"
	assets fs.FS
	csp    string
}

// pageData is what the page templates see.
type pageData struct {
	APIBase string
	Assets  string // the assets directory, relative to the page
}

// New returns the dashboard's handler.
func New(o Options) (http.Handler, error) {
	base := strings.TrimRight(o.APIBase, "/")
	connect := "'self'"
	switch {
	case base == "" && o.APIBase == "":
		return nil, errors.New("dashboard: Options.APIBase is required")
	case strings.HasPrefix(base, "/") || o.APIBase == "/":
		if strings.HasPrefix(base, "//") {
			return nil, fmt.Errorf("dashboard: APIBase %q: a scheme-relative URL is ambiguous; give a path or an absolute URL", o.APIBase)
		}
	default:
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("dashboard: APIBase %q is neither a path nor an absolute http(s) URL", o.APIBase)
		}
		connect += " " + u.Scheme + "://" + u.Host
	}
	if strings.ContainsAny(base, "?#\"'<> \t\r\n") {
		return nil, fmt.Errorf("dashboard: APIBase %q has characters a base URL cannot have", o.APIBase)
	}

	tmpl, err := template.ParseFS(files, "pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	h := &handler{pages: map[string][]byte{}}
	for p, name := range map[string]string{"/budget": "budget.html", "/admin/budget": "admin.html"} {
		var b bytes.Buffer
		d := pageData{APIBase: base, Assets: "assets"}
		if strings.Count(p, "/") > 1 {
			d.Assets = strings.Repeat("../", strings.Count(p, "/")-1) + "assets"
		}
		if err := tmpl.ExecuteTemplate(&b, name, d); err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		h.pages[p] = b.Bytes()
	}
	h.assets, _ = fs.Sub(files, "assets")
	h.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src " + connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return h, nil
}

// contentTypes are the asset types served; anything else is a 404.
var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-cache")

	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if p == "/" {
		// Relative, so that it works wherever the handler is mounted
		// (http.Redirect would resolve it against the stripped path).
		hd.Set("Location", "budget")
		w.WriteHeader(http.StatusFound)
		return
	}
	if page, ok := h.pages[strings.TrimSuffix(p, "/")]; ok && !strings.HasSuffix(p, "/") {
		hd.Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
		return
	}
	if name, ok := strings.CutPrefix(p, "/assets/"); ok && name != "" && !strings.Contains(name, "/") {
		ct, known := contentTypes[path.Ext(name)]
		if b, err := fs.ReadFile(h.assets, name); known && err == nil {
			hd.Set("Content-Type", ct)
			w.Write(b)
			return
		}
	}
	http.NotFound(w, r)
}
