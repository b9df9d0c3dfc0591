package gate

import (
	"bytes"
	"encoding/json"

	"github.com/llmbudget/budget/pricing"
)

// A usageParser reads a response body incrementally, as it passes through
// to the caller, and reports the usage the provider stated. It sees each
// byte once, keeps bounded memory, and never fails: what it cannot read, it
// does not report.
type usageParser interface {
	// feed takes the next bytes of the body.
	feed(p []byte)
	// end is called once when the body has ended (EOF, error or close).
	end()
	// usage returns the usage read so far. final is true when the
	// provider's closing report was read; otherwise u holds what partial
	// counts were seen (an Anthropic stream's input tokens, say).
	usage() (u pricing.Usage, final bool)
}

// usageJSON is the union of the usage objects of the APIs the gate meters.
// Pointers tell absent fields from zeros.
type usageJSON struct {
	// OpenAI chat completions, completions, embeddings.
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	PromptDetails    *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	// OpenAI responses; Anthropic messages.
	InputTokens  *int64 `json:"input_tokens"`
	OutputTokens *int64 `json:"output_tokens"`
	InputDetails *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	// Anthropic messages.
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
}

// merge overwrites u's fields with those present in v: an Anthropic stream
// reports usage in message_start and again, cumulatively, in message_delta.
func (u *usageJSON) merge(v *usageJSON) {
	for _, f := range [...]struct{ dst, src **int64 }{
		{&u.InputTokens, &v.InputTokens},
		{&u.OutputTokens, &v.OutputTokens},
		{&u.CacheReadInputTokens, &v.CacheReadInputTokens},
		{&u.CacheCreationInputTokens, &v.CacheCreationInputTokens},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
}

// convert maps a usage object of api a to pricing.Usage. ok is false when a
// required count is missing, a count is negative or too large, or cached
// tokens exceed the prompt.
func (u *usageJSON) convert(a api) (pricing.Usage, bool) {
	var out pricing.Usage
	var prompt, cached *int64
	switch a {
	case chatCompletions, completions, embeddings:
		prompt = u.PromptTokens
		if u.PromptDetails != nil {
			cached = u.PromptDetails.CachedTokens
		}
		if a != embeddings {
			if u.CompletionTokens == nil {
				return pricing.Usage{}, false
			}
			out.OutputTokens = *u.CompletionTokens
		}
	case responses:
		prompt = u.InputTokens
		if u.InputDetails != nil {
			cached = u.InputDetails.CachedTokens
		}
		if u.OutputTokens == nil {
			return pricing.Usage{}, false
		}
		out.OutputTokens = *u.OutputTokens
	case messages:
		// Anthropic's input_tokens exclude cache reads and writes.
		if u.InputTokens == nil || u.OutputTokens == nil {
			return pricing.Usage{}, false
		}
		out.InputTokens, out.OutputTokens = *u.InputTokens, *u.OutputTokens
		if u.CacheReadInputTokens != nil {
			out.CacheReadTokens = *u.CacheReadInputTokens
		}
		if u.CacheCreationInputTokens != nil {
			out.CacheWriteTokens = *u.CacheCreationInputTokens
		}
	default:
		return pricing.Usage{}, false
	}
	if a != messages {
		// OpenAI's prompt counts include cached tokens.
		if prompt == nil {
			return pricing.Usage{}, false
		}
		out.InputTokens = *prompt
		if cached != nil {
			if *cached < 0 || *cached > *prompt {
				return pricing.Usage{}, false
			}
			out.InputTokens -= *cached
			out.CacheReadTokens = *cached
		}
	}
	for _, n := range [...]int64{out.InputTokens, out.CacheReadTokens, out.CacheWriteTokens, out.OutputTokens} {
		if n < 0 || n > pricing.MaxTokens {
			return pricing.Usage{}, false
		}
	}
	return out, true
}

// parseUsage decodes and converts a raw usage object.
func parseUsage(a api, raw []byte) (pricing.Usage, bool) {
	var u usageJSON
	if err := json.Unmarshal(raw, &u); err != nil {
		return pricing.Usage{}, false
	}
	return u.convert(a)
}

// maxUsageBytes bounds the usage object the JSON parser keeps; real ones
// are a few hundred bytes.
const maxUsageBytes = 64 << 10

// jsonParser finds the top-level "usage" value of a JSON response as the
// bytes stream past, without buffering the body: it tracks nesting depth
// and string state, recognizes the keys of the top-level object, and
// captures only the value of "usage". Bodies of any size (a large
// embeddings response, say) cost O(1) memory.
type jsonParser struct {
	api api

	depth    int
	inString bool
	escaped  bool

	keyPos   bool   // at depth 1, the next string is a key
	inKey    bool   // reading a top-level key
	key      []byte // the key read so far, up to len("usage")+1 bytes
	keyMatch bool   // the last top-level key was "usage"

	capturing bool
	overflow  bool
	cur       []byte // the value being captured
	value     []byte // the last complete "usage" value
}

const usageKey = "usage"

func (j *jsonParser) feed(p []byte) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if j.inString {
			if !j.capturing && !j.inKey && !j.escaped {
				// Fast path: skip to the next quote or backslash.
				k := bytes.IndexAny(p[i:], `"\`)
				if k < 0 {
					return
				}
				i += k
				c = p[i]
			}
			j.capture(c)
			switch {
			case j.escaped:
				j.escaped = false
				j.keyByte(0) // an escaped key never equals "usage"
			case c == '\\':
				j.escaped = true
			case c == '"':
				j.inString = false
				if j.inKey {
					j.inKey = false
					j.keyMatch = string(j.key) == usageKey
				}
			default:
				j.keyByte(c)
			}
			continue
		}
		switch c {
		case '"':
			j.inString = true
			if j.depth == 1 && j.keyPos {
				j.keyPos, j.inKey, j.key = false, true, j.key[:0]
			}
			j.capture(c)
		case '{', '[':
			j.depth++
			if j.depth == 1 {
				j.keyPos = c == '{'
			}
			j.capture(c)
		case '}', ']':
			if j.depth == 1 && j.capturing {
				j.endCapture()
			}
			j.depth--
			j.capture(c)
		case ',':
			if j.depth == 1 {
				if j.capturing {
					j.endCapture()
				}
				j.keyPos = true
			} else {
				j.capture(c)
			}
		case ':':
			if j.depth == 1 && !j.capturing {
				if j.keyMatch {
					j.capturing, j.overflow, j.cur = true, false, j.cur[:0]
				}
				j.keyMatch = false
			} else {
				j.capture(c)
			}
		default:
			j.capture(c)
		}
	}
}

func (j *jsonParser) keyByte(c byte) {
	if !j.inKey {
		return
	}
	if len(j.key) > len(usageKey) || c == 0 {
		j.key = append(j.key[:0], 0, 0, 0, 0, 0, 0) // longer than "usage": no match
		return
	}
	j.key = append(j.key, c)
}

func (j *jsonParser) capture(c byte) {
	if !j.capturing || j.overflow {
		return
	}
	if len(j.cur) >= maxUsageBytes {
		j.overflow = true
		return
	}
	j.cur = append(j.cur, c)
}

func (j *jsonParser) endCapture() {
	j.capturing = false
	if !j.overflow {
		j.value = append(j.value[:0], j.cur...)
	}
}

func (j *jsonParser) end() {}

func (j *jsonParser) usage() (pricing.Usage, bool) {
	if j.value == nil {
		return pricing.Usage{}, false
	}
	return parseUsage(j.api, j.value)
}

// maxEventBytes bounds one SSE event's data; an event beyond it is dropped
// (and, if it carried the usage, the call settles at its estimate).
const maxEventBytes = 1 << 20

// sseParser reads a server-sent event stream line by line as it passes and
// decodes only the events that carry a usage object:
//
//   - OpenAI chat completions and completions: the chunk with a non-null
//     "usage" (sent last when stream_options.include_usage is set);
//   - OpenAI responses: response.completed (or .incomplete, .failed), whose
//     "response" holds the usage;
//   - Anthropic messages: message_start (input and cache counts) and
//     message_delta (cumulative output); the message_delta is final.
type sseParser struct {
	api api

	line     []byte // a line split across reads
	longLine bool   // the current line passed maxEventBytes: drop it
	data     []byte // the data lines of the current event
	dropData bool   // the current event passed maxEventBytes

	final   bool
	u       pricing.Usage
	partial usageJSON // Anthropic: merged from message_start and message_delta
}

func (s *sseParser) feed(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(s.line)+len(p) > maxEventBytes {
				s.longLine, s.line = true, s.line[:0]
			} else if !s.longLine {
				s.line = append(s.line, p...)
			}
			return
		}
		switch {
		case s.longLine:
			s.longLine = false
			s.dropData = true
		case len(s.line) > 0:
			s.line = append(s.line, p[:i]...)
			s.processLine(s.line)
			s.line = s.line[:0]
		default:
			s.processLine(p[:i])
		}
		p = p[i+1:]
	}
}

var dataPrefix = []byte("data:")

func (s *sseParser) processLine(line []byte) {
	if len(line) > maxEventBytes {
		s.dropData = true // as feed does for a line split across reads
		return
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		s.dispatch()
		return
	}
	if !bytes.HasPrefix(line, dataPrefix) {
		return // event:, id:, retry: and comments carry nothing we need
	}
	v := line[len(dataPrefix):]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	if s.dropData {
		return
	}
	if len(s.data)+len(v)+1 > maxEventBytes {
		s.dropData, s.data = true, s.data[:0]
		return
	}
	if len(s.data) > 0 {
		s.data = append(s.data, '\n')
	}
	s.data = append(s.data, v...)
}

// sseEvent is the union of the event payloads that can carry usage.
type sseEvent struct {
	Type    string     `json:"type"`
	Usage   *usageJSON `json:"usage"`
	Message *struct {
		Usage *usageJSON `json:"usage"`
	} `json:"message"`
	Response *struct {
		Usage *usageJSON `json:"usage"`
	} `json:"response"`
}

func (s *sseParser) dispatch() {
	data := s.data
	s.data, s.dropData = s.data[:0], false
	if len(data) == 0 || !hasUsageObject(data) {
		return
	}
	var ev sseEvent
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	switch s.api {
	case chatCompletions, completions:
		if ev.Usage != nil {
			s.u, s.final = ev.Usage.convert(s.api)
		}
	case responses:
		if ev.Response != nil && ev.Response.Usage != nil {
			s.u, s.final = ev.Response.Usage.convert(s.api)
		}
	case messages:
		switch {
		case ev.Type == "message_start" && ev.Message != nil && ev.Message.Usage != nil:
			s.partial.merge(ev.Message.Usage)
		case ev.Type == "message_delta" && ev.Usage != nil:
			s.partial.merge(ev.Usage)
			s.u, s.final = s.partial.convert(s.api)
		}
	}
}

// hasUsageObject reports whether data has a "usage" key whose value is an
// object: a cheap test that spares decoding the many events without one
// (OpenAI sends "usage":null in every chunk).
func hasUsageObject(data []byte) bool {
	for {
		i := bytes.Index(data, []byte(`"usage"`))
		if i < 0 {
			return false
		}
		data = bytes.TrimLeft(data[i+len(`"usage"`):], " \t\r\n")
		if len(data) > 0 && data[0] == ':' {
			rest := bytes.TrimLeft(data[1:], " \t\r\n")
			if len(rest) > 0 && rest[0] == '{' {
				return true
			}
		}
	}
}

// end dispatches an event the stream ended without terminating: the
// usage it carries was still reported by the provider.
func (s *sseParser) end() {
	if len(s.line) > 0 && !s.longLine {
		s.processLine(s.line)
		s.line = s.line[:0]
	}
	s.dispatch()
}

func (s *sseParser) usage() (pricing.Usage, bool) {
	if s.final {
		return s.u, true
	}
	if s.api == messages {
		// What message_start reported, for a stream cut off after it.
		var u pricing.Usage
		for _, f := range [...]struct {
			dst *int64
			src *int64
		}{
			{&u.InputTokens, s.partial.InputTokens},
			{&u.CacheReadTokens, s.partial.CacheReadInputTokens},
			{&u.CacheWriteTokens, s.partial.CacheCreationInputTokens},
			{&u.OutputTokens, s.partial.OutputTokens},
		} {
			if f.src != nil && *f.src >= 0 && *f.src <= pricing.MaxTokens {
				*f.dst = *f.src
			}
		}
		return u, false
	}
	return pricing.Usage{}, false
}
