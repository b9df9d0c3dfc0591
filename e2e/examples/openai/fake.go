package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
)

// newFakeServer starts an OpenAI-compatible server in the process that
// answers POST /v1/chat/completions, plain or streaming, with a canned
// reply and a usage computed from the request, as the real API reports it:
// in the response, or in a final stream chunk when the request sets
// stream_options.include_usage (which the gate does).
func newFakeServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
			return
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
			Stream        bool `json:"stream"`
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":{"message":"invalid JSON","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		prompt := ""
		if n := len(req.Messages); n > 0 {
			prompt = req.Messages[n-1].Content
		}
		reply := fakeReply(prompt)
		// Roughly four bytes a token, plus the framing of one message.
		usage := map[string]any{
			"prompt_tokens":     (len(prompt)+3)/4 + 8,
			"completion_tokens": (len(reply) + 3) / 4,
		}
		usage["total_tokens"] = usage["prompt_tokens"].(int) + usage["completion_tokens"].(int)
		id, model := "chatcmpl-fake", req.Model
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"id": id, "object": "chat.completion", "created": 1741569952, "model": model,
				"choices": []any{map[string]any{
					"index": 0, "finish_reason": "stop", "logprobs": nil,
					"message": map[string]any{"role": "assistant", "content": reply, "refusal": nil},
				}},
				"usage": usage,
			})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(v any) {
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
		chunk := func(delta map[string]any, finish any) map[string]any {
			return map[string]any{
				"id": id, "object": "chat.completion.chunk", "created": 1741569952, "model": model,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
			}
		}
		send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
		for _, word := range strings.SplitAfter(reply, " ") {
			send(chunk(map[string]any{"content": word}, nil))
		}
		send(chunk(map[string]any{}, "stop"))
		if req.StreamOptions.IncludeUsage {
			send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1741569952, "model": model, "choices": []any{}, "usage": usage})
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
}

func fakeReply(prompt string) string {
	switch {
	case strings.Contains(prompt, "three things"):
		return "Rent, groceries, and tokens."
	case strings.Contains(prompt, "reserve"):
		return "Because checking and charging later lets concurrent calls overspend; a reservation holds the worst case up front."
	case strings.Contains(prompt, "haiku"):
		return "Tokens flow like rain / each one counted, none escape / the budget holds firm."
	}
	return "OK."
}
