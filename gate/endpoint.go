package gate

import (
	"fmt"
	"net/http"
	"path"
	"strings"
)

// api is a kind of metered call; the zero api is "not metered".
type api uint8

const (
	chatCompletions api = iota + 1
	completions
	responses
	embeddings
	messages // Anthropic
	gemini   // Google generateContent and streamGenerateContent
)

// endpoints maps path suffixes to APIs. /v1/chat/completions must be
// matched before /v1/completions, which it ends with.
var endpoints = [...]struct {
	suffix string
	api    api
}{
	{"/v1/chat/completions", chatCompletions},
	{"/v1/completions", completions},
	{"/v1/responses", responses},
	{"/v1/embeddings", embeddings},
	{"/v1/messages", messages},
}

// classify returns the API a request calls, or 0; for Gemini also the
// model named in the path (…/models/{model}:generateContent).
func classify(method, p string) (a api, model string) {
	if method != http.MethodPost {
		return 0, ""
	}
	for _, e := range endpoints {
		if strings.HasSuffix(p, e.suffix) {
			return e.api, ""
		}
	}
	i := strings.LastIndex(p, "/models/")
	if i < 0 {
		return 0, ""
	}
	model, verb, ok := strings.Cut(p[i+len("/models/"):], ":")
	if !ok || model == "" || strings.Contains(model, "/") || (verb != "generateContent" && verb != "streamGenerateContent") {
		return 0, ""
	}
	return gemini, model
}

func (a api) provider() string {
	switch a {
	case messages:
		return "anthropic"
	case gemini:
		return "google"
	}
	return "openai"
}

// streamOptions reports whether the API reports a stream's usage only when
// asked with stream_options.include_usage.
func (a api) streamOptions() bool { return a == chatCompletions || a == completions }

// limitKey is the output-limit key the gate adds to fit a request that
// sets none.
func (a api) limitKey() string {
	switch a {
	case chatCompletions:
		return "max_completion_tokens"
	case responses:
		return "max_output_tokens"
	}
	return "max_tokens"
}

// CommonFreeRoutes are routes of the OpenAI, Anthropic and Gemini APIs that
// cost nothing: listing and describing models, and counting tokens. Pass
// them as Options.Free to let an SDK call them through the gate.
var CommonFreeRoutes = []string{
	"GET /v1/models",
	"GET /v1/models/*",
	"POST /v1/messages/count_tokens",
	"GET /v1beta/models",
	"GET /v1beta/models/*",
	"POST /v1beta/models/*:countTokens",
}

// route is one parsed Options.Free entry.
type route struct {
	method  string
	pattern string // path.Match pattern over the last segs segments
	segs    int
}

func parseRoutes(specs []string) ([]route, error) {
	var out []route
	for _, spec := range specs {
		method, p, ok := strings.Cut(strings.TrimSpace(spec), " ")
		p = strings.TrimSpace(p)
		if !ok || method == "" || !strings.HasPrefix(p, "/") || p == "/" {
			return nil, fmt.Errorf("gate: free route %q: want a method, a space and a path, as in \"GET /v1/models\"", spec)
		}
		p = strings.Trim(p, "/")
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("gate: free route %q: %v", spec, err)
		}
		out = append(out, route{method: method, pattern: p, segs: strings.Count(p, "/") + 1})
	}
	return out, nil
}

// free reports whether a request matches one of the free routes: its
// method, and its path's last segments (any prefix before them is
// allowed, as for metered paths).
func free(routes []route, method, p string) bool {
	for _, r := range routes {
		if r.method != method {
			continue
		}
		tail := strings.TrimSuffix(p, "/")
		i := len(tail)
		for n := 0; n < r.segs && i >= 0; n++ {
			i = strings.LastIndexByte(tail[:i], '/')
		}
		if i < 0 {
			continue
		}
		if ok, _ := path.Match(r.pattern, tail[i+1:]); ok {
			return true
		}
	}
	return false
}
