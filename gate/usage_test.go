package gate

import (
	"bytes"
	"testing"

	"github.com/llmbudget/budget/pricing"
)

func TestJSONParser(t *testing.T) {
	tests := []struct {
		name  string
		api   api
		data  string
		want  pricing.Usage
		final bool
	}{
		{"chat", chatCompletions, `{"id":"x","choices":[{"message":{"content":"a \"usage\": {} } ]"}}],"usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}},"x":1}`,
			pricing.Usage{InputTokens: 10, CacheReadTokens: 2, OutputTokens: 3}, true},
		{"usage last", embeddings, `{"data":[{"embedding":[0.1,-0.2]}],"usage":{"prompt_tokens":8,"total_tokens":8}}`, pricing.Usage{InputTokens: 8}, true},
		{"whitespace", responses, "{ \"usage\" :\n {\"input_tokens\": 5, \"output_tokens\": 6 } }", pricing.Usage{InputTokens: 5, OutputTokens: 6}, true},
		{"anthropic", messages, `{"usage":{"input_tokens":1,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":4}}`,
			pricing.Usage{InputTokens: 1, CacheWriteTokens: 2, CacheReadTokens: 3, OutputTokens: 4}, true},
		{"last duplicate wins", chatCompletions, `{"usage":{"prompt_tokens":1,"completion_tokens":1},"usage":{"prompt_tokens":2,"completion_tokens":2}}`,
			pricing.Usage{InputTokens: 2, OutputTokens: 2}, true},
		{"nested usage is not the usage", messages, `{"metadata":{"usage":{"input_tokens":1,"output_tokens":1}}}`, pricing.Usage{}, false},
		{"usage in a string", chatCompletions, `{"content":"\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}"}`, pricing.Usage{}, false},
		{"longer key", chatCompletions, `{"usages":{"prompt_tokens":1,"completion_tokens":1}}`, pricing.Usage{}, false},
		{"missing output", chatCompletions, `{"usage":{"prompt_tokens":1}}`, pricing.Usage{}, false},
		{"truncated", chatCompletions, `{"usage":{"prompt_tokens":1,"completion_tokens":1}`, pricing.Usage{}, false},
		{"array at top", chatCompletions, `[{"usage":{"prompt_tokens":1,"completion_tokens":1}}]`, pricing.Usage{}, false},
	}
	for _, tt := range tests {
		for chunk := 1; chunk <= len(tt.data); chunk *= 2 {
			u, final := parse(tt.api, false, []byte(tt.data), chunk)
			if u != tt.want || final != tt.final {
				t.Errorf("%s in %d-byte pieces: %+v, %v; want %+v, %v", tt.name, chunk, u, final, tt.want, tt.final)
			}
		}
	}
	// A large body costs no more memory than its usage object.
	p := &jsonParser{api: embeddings}
	p.feed([]byte(`{"data":[`))
	vec := bytes.Repeat([]byte(`0.0123456789,`), 1000)
	for range 1000 {
		p.feed(vec)
	}
	p.feed([]byte(`1],"usage":{"prompt_tokens":8,"total_tokens":8}}`))
	if u, final := p.usage(); !final || u.InputTokens != 8 || cap(p.cur) > 1024 {
		t.Errorf("large body: %+v, %v, kept %d bytes", u, final, cap(p.cur))
	}
}

func TestSSEParser(t *testing.T) {
	tests := []struct {
		name  string
		api   api
		data  string
		want  pricing.Usage
		final bool
	}{
		{"chat", chatCompletions, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n",
			pricing.Usage{InputTokens: 5, OutputTokens: 7}, true},
		{"CRLF and multi-line data", chatCompletions, "data: {\"choices\":[],\r\ndata: \"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\r\n\r\n",
			pricing.Usage{InputTokens: 5, OutputTokens: 7}, true},
		{"comments, ids, no space", completions, ": ping\nid: 3\nevent: x\ndata:{\"usage\" : {\"prompt_tokens\":2,\"completion_tokens\":1}}\n\n",
			pricing.Usage{InputTokens: 2, OutputTokens: 1}, true},
		{"unterminated last event", completions, "data: {\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}", pricing.Usage{InputTokens: 2, OutputTokens: 1}, true},
		{"responses", responses, "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n" +
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":3}}}\n\n",
			pricing.Usage{InputTokens: 5, CacheReadTokens: 4, OutputTokens: 3}, true},
		{"anthropic", messages, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":40}}\n\n",
			pricing.Usage{InputTokens: 10, CacheReadTokens: 5, OutputTokens: 40}, true},
		{"anthropic cut after start", messages, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
			pricing.Usage{InputTokens: 10, OutputTokens: 1}, false},
		{"no usage", chatCompletions, "data: {\"choices\":[],\"usage\":null}\n\ndata: [DONE]\n\n", pricing.Usage{}, false},
	}
	for _, tt := range tests {
		for chunk := 1; chunk <= len(tt.data); chunk *= 2 {
			u, final := parse(tt.api, true, []byte(tt.data), chunk)
			if u != tt.want || final != tt.final {
				t.Errorf("%s in %d-byte pieces: %+v, %v; want %+v, %v", tt.name, chunk, u, final, tt.want, tt.final)
			}
		}
	}
}

func TestIncludeUsage(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		injected bool
	}{
		{`{"model":"m","stream":true}`, `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"{ \"model\" : \"m\" ,\n \"stream\":true }", "{ \"model\" : \"m\" ,\n \"stream\":true ,\"stream_options\":{\"include_usage\":true}}", true},
		{`{"model":"m","stream_options":null}`, `{"model":"m","stream_options":{"include_usage":true}}`, true},
		{`{"stream_options":{"include_usage":true},"b":1}`, `{"stream_options":{"include_usage":true},"b":1}`, false}, // unchanged
		{`{"stream_options":{ "include_usage" : false,"x":"<&>"}}`, `{"stream_options":{ "include_usage" : true,"x":"<&>"}}`, true},
		{`{"stream_options":{"x":"\u00e9"}}`, `{"stream_options":{"include_usage":true,"x":"\u00e9"}}`, true},
		{`{"stream_options":{ }}`, `{"stream_options":{"include_usage":true }}`, true},
		// Of duplicate keys the last counts, as upstream reads it.
		{`{"stream_options":{"include_usage":true},"stream_options":{}}`, `{"stream_options":{"include_usage":true},"stream_options":{"include_usage":true}}`, true},
		{`{"stream_options":{"include_usage":true,"include_usage":false}}`, `{"stream_options":{"include_usage":true,"include_usage":true}}`, true},
	} {
		edits, injected, err := includeUsage(parseTop([]byte(tt.in), nil))
		if got := apply([]byte(tt.in), edits); err != nil || string(got) != tt.want || injected != tt.injected {
			t.Errorf("includeUsage(%s) = %s, %v, %v; want %s, %v", tt.in, got, injected, err, tt.want, tt.injected)
		}
	}
	if _, _, err := includeUsage(parseTop([]byte(`{"stream_options":[1]}`), nil)); err == nil {
		t.Error("stream_options not an object: no error")
	}
}

func TestLimitEdits(t *testing.T) {
	for _, tt := range []struct {
		a        api
		in, want string
	}{
		{chatCompletions, `{"model":"m","messages":[]}`, `{"model":"m","messages":[],"max_completion_tokens":42}`},
		{chatCompletions, `{"model":"m","max_tokens":500, "max_completion_tokens":30}`, `{"model":"m","max_tokens":42, "max_completion_tokens":30}`},
		{chatCompletions, `{"model":"m","max_tokens":null}`, `{"model":"m","max_tokens":42}`},
		{completions, `{"model":"m"}`, `{"model":"m","max_tokens":42}`},
		{responses, `{"model":"m","input":"hi"}`, `{"model":"m","input":"hi","max_output_tokens":42}`},
		{messages, `{"model":"m","max_tokens":4096,"messages":[]}`, `{"model":"m","max_tokens":42,"messages":[]}`},
		{gemini, `{"contents":[]}`, `{"contents":[],"generationConfig":{"maxOutputTokens":42}}`},
		{gemini, `{"contents":[],"generationConfig":{"temperature":1}}`, `{"contents":[],"generationConfig":{"maxOutputTokens":42,"temperature":1}}`},
		{gemini, `{"generation_config":{}}`, `{"generation_config":{"max_output_tokens":42}}`},
		{gemini, `{"generationConfig":{"maxOutputTokens":8192}}`, `{"generationConfig":{"maxOutputTokens":42}}`},
		{gemini, `{"generationConfig":null}`, `{"generationConfig":{"maxOutputTokens":42}}`},
	} {
		if got := apply([]byte(tt.in), limitEdits(parseTop([]byte(tt.in), nil), tt.a, 42)); string(got) != tt.want {
			t.Errorf("limitEdits(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestSSEParserKeepsLineAcrossFeeds: an event's data line that arrives in
// one read and its blank line in the next is parsed from a copy, not from
// the caller's buffer, which the caller reuses between reads.
func TestSSEParserKeepsLineAcrossFeeds(t *testing.T) {
	for _, tt := range []struct {
		name   string
		pieces []string
	}{
		{"line then blank", []string{"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n", "\n"}},
		{"line split", []string{"data: {\"choices\":[],\"usage\":{\"prompt_tok", "ens\":5,\"completion_tokens\":7}}\n", "\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &sseParser{api: chatCompletions}
			buf := make([]byte, 128)
			for _, piece := range tt.pieces {
				n := copy(buf, piece)
				s.feed(buf[:n])
				for i := range buf {
					buf[i] = 'x' // the caller reuses its buffer
				}
			}
			u, final := s.usage()
			if !final || u.InputTokens != 5 || u.OutputTokens != 7 {
				t.Errorf("usage %+v, final %v; want 5 in, 7 out, final", u, final)
			}
		})
	}
}
