package gate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
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

// classify returns the API a request calls, or 0.
func classify(method, path string) api {
	if method != http.MethodPost {
		return 0
	}
	for _, e := range endpoints {
		if strings.HasSuffix(path, e.suffix) {
			return e.api
		}
	}
	return 0
}

func (a api) provider() string {
	if a == messages {
		return "anthropic"
	}
	return "openai"
}

// streamOptions reports whether the API reports a stream's usage only when
// asked with stream_options.include_usage.
func (a api) streamOptions() bool { return a == chatCompletions || a == completions }

// includeUsage returns body with stream_options.include_usage set to true,
// keeping every other field. A body that already asks for it is returned
// as is.
func includeUsage(body []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	var so map[string]json.RawMessage
	if raw, ok := top["stream_options"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &so); err != nil {
			return nil, fmt.Errorf(`"stream_options": %v`, err)
		}
		if string(so["include_usage"]) == "true" {
			return body, nil
		}
	}
	if so == nil {
		so = make(map[string]json.RawMessage, 1)
	}
	so["include_usage"] = json.RawMessage("true")
	raw, err := marshal(so)
	if err != nil {
		return nil, err
	}
	top["stream_options"] = raw
	return marshal(top)
}

// marshal encodes v without escaping <, > and &, so that strings in the
// rewritten body keep their bytes.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
