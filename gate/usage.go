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
	// finished reports that nothing the provider can still send changes
	// the charge: the final usage was read, or the response is over (the
	// end of a JSON value, an OpenAI stream's [DONE], an Anthropic
	// message_stop). The gate settles at once, whether or not the caller
	// reads on or closes the body.
	finished() bool
}

// usageJSON is the union of the usage objects of the APIs the gate meters.
// Pointers tell absent fields from zeros.
type usageJSON struct {
	// OpenAI chat completions, completions, embeddings.
	PromptTokens     *int64        `json:"prompt_tokens"`
	CompletionTokens *int64        `json:"completion_tokens"`
	PromptDetails    *usageDetails `json:"prompt_tokens_details"`
	// OpenAI responses; Anthropic messages.
	InputTokens  *int64        `json:"input_tokens"`
	OutputTokens *int64        `json:"output_tokens"`
	InputDetails *usageDetails `json:"input_tokens_details"`
	// Anthropic messages.
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	// Gemini usageMetadata: promptTokenCount includes cached and excludes
	// tool-use prompt tokens; output is candidates plus thoughts.
	PromptTokenCount        *int64 `json:"promptTokenCount"`
	CachedContentTokenCount *int64 `json:"cachedContentTokenCount"`
	CandidatesTokenCount    *int64 `json:"candidatesTokenCount"`
	ThoughtsTokenCount      *int64 `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount *int64 `json:"toolUsePromptTokenCount"`
}

// usageDetails is OpenAI's prompt_tokens_details or input_tokens_details.
type usageDetails struct {
	CachedTokens *int64 `json:"cached_tokens"`
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

// usageCounts is a usage object's integer fields, flat: val[f] is field
// f (fPromptTokens, …; the details' cached_tokens as fPromptCached and
// fInputCached) when set[f], i.e. when present and not null.
type usageCounts struct {
	val [nUsageFields]int64
	set [nUsageFields]bool
}

// counts flattens u.
func (u *usageJSON) counts() usageCounts {
	var c usageCounts
	for f, p := range [...]*int64{
		fPromptTokens:             u.PromptTokens,
		fCompletionTokens:         u.CompletionTokens,
		fInputTokens:              u.InputTokens,
		fOutputTokens:             u.OutputTokens,
		fCacheReadInputTokens:     u.CacheReadInputTokens,
		fCacheCreationInputTokens: u.CacheCreationInputTokens,
		fPromptTokenCount:         u.PromptTokenCount,
		fCachedContentTokenCount:  u.CachedContentTokenCount,
		fCandidatesTokenCount:     u.CandidatesTokenCount,
		fThoughtsTokenCount:       u.ThoughtsTokenCount,
		fToolUsePromptTokenCount:  u.ToolUsePromptTokenCount,
	} {
		if p != nil {
			c.val[f], c.set[f] = *p, true
		}
	}
	for f, d := range [...]*usageDetails{fPromptCached: u.PromptDetails, fInputCached: u.InputDetails} {
		if d != nil && d.CachedTokens != nil {
			c.val[f], c.set[f] = *d.CachedTokens, true
		}
	}
	return c
}

// convert maps a usage object of api a to pricing.Usage.
func (u *usageJSON) convert(a api) (pricing.Usage, bool) {
	c := u.counts()
	return c.convert(a)
}

// convert maps the counts of a usage object of api a to pricing.Usage. ok
// is false when a required count is missing, a count is negative or too
// large, or cached tokens exceed the prompt.
func (c *usageCounts) convert(a api) (pricing.Usage, bool) {
	var out pricing.Usage
	var prompt, cached int // the fields of the prompt and cached counts
	var extra int64        // Gemini's tool-use prompt
	switch a {
	case chatCompletions, completions, embeddings:
		prompt, cached = fPromptTokens, fPromptCached
		if a != embeddings {
			if !c.set[fCompletionTokens] {
				return pricing.Usage{}, false
			}
			out.OutputTokens = c.val[fCompletionTokens]
		}
	case responses:
		prompt, cached = fInputTokens, fInputCached
		if !c.set[fOutputTokens] {
			return pricing.Usage{}, false
		}
		out.OutputTokens = c.val[fOutputTokens]
	case gemini:
		// promptTokenCount includes cached and excludes tool-use prompt
		// tokens; output is candidates plus thoughts.
		prompt, cached = fPromptTokenCount, fCachedContentTokenCount
		for _, f := range [...]int{fCandidatesTokenCount, fThoughtsTokenCount} {
			if c.set[f] {
				if n := c.val[f]; n < 0 || n > pricing.MaxTokens {
					return pricing.Usage{}, false
				}
				out.OutputTokens += c.val[f]
			}
		}
		if c.set[fToolUsePromptTokenCount] {
			extra = c.val[fToolUsePromptTokenCount]
			if extra < 0 || extra > pricing.MaxTokens {
				return pricing.Usage{}, false
			}
		}
	case messages:
		// Anthropic's input_tokens exclude cache reads and writes.
		if !c.set[fInputTokens] || !c.set[fOutputTokens] {
			return pricing.Usage{}, false
		}
		out.InputTokens, out.OutputTokens = c.val[fInputTokens], c.val[fOutputTokens]
		if c.set[fCacheReadInputTokens] {
			out.CacheReadTokens = c.val[fCacheReadInputTokens]
		}
		if c.set[fCacheCreationInputTokens] {
			out.CacheWriteTokens = c.val[fCacheCreationInputTokens]
		}
	default:
		return pricing.Usage{}, false
	}
	if a != messages {
		// OpenAI's and Gemini's prompt counts include cached tokens.
		if !c.set[prompt] {
			return pricing.Usage{}, false
		}
		p := c.val[prompt] + extra
		out.InputTokens = p
		if c.set[cached] {
			n := c.val[cached]
			if n < 0 || n > p {
				return pricing.Usage{}, false
			}
			out.InputTokens -= n
			out.CacheReadTokens = n
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
	var d usageDecoder
	if d.decode(raw) {
		return d.c.convert(a)
	}
	return parseUsageSlow(a, raw)
}

// parseUsageSlow is parseUsage with encoding/json alone.
func parseUsageSlow(a api, raw []byte) (pricing.Usage, bool) {
	var u usageJSON
	if err := json.Unmarshal(raw, &u); err != nil {
		return pricing.Usage{}, false
	}
	return u.convert(a)
}

// maxUsageBytes bounds the usage object the JSON parser keeps; real ones
// are a few hundred bytes.
const maxUsageBytes = 64 << 10

// jsonParser finds the top-level "usage" value of a JSON response (Gemini:
// "usageMetadata", at the top level or in each element of a top-level
// array, as streamGenerateContent without alt=sse sends) as the bytes
// stream past, without buffering the body: it tracks nesting depth and
// string state, recognizes the keys of the top-level object, and captures
// only the usage value. Bodies of any size (a large embeddings response,
// say) cost O(1) memory. The response is finished when its top-level value
// closes.
type jsonParser struct {
	api api

	started  bool
	keyDepth int // the depth of the objects whose keys are read
	depth    int
	inString bool
	escaped  bool
	complete bool // the top-level value closed

	keyPos   bool             // at keyDepth, the next string is a key
	inKey    bool             // reading a key at keyDepth
	key      []byte           // the key read so far, up to len(usageKey)+1 bytes
	keyArr   [len(noKey)]byte // key's first array
	keyMatch bool             // the last key read was the usage key

	capturing bool
	overflow  bool
	cur       []byte // the value being captured
	value     []byte // the last complete usage value
}

func (j *jsonParser) usageKey() string {
	if j.api == gemini {
		return "usageMetadata"
	}
	return "usage"
}

func (j *jsonParser) feed(p []byte) {
	if j.complete {
		return
	}
	// While capturing, every byte up to the end of the value is kept:
	// p[mark:] is appended at the end of the value or of p.
	mark := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if j.inString {
			if !j.inKey && !j.escaped {
				// Fast path: skip to the next quote or backslash.
				k := indexQuoteOrBackslash(p[i:])
				if k < 0 {
					break
				}
				i += k
				c = p[i]
			}
			switch {
			case j.escaped:
				j.escaped = false
				j.keyByte(0) // an escaped key never equals the usage key
			case c == '\\':
				j.escaped = true
			case c == '"':
				j.inString = false
				if j.inKey {
					j.inKey = false
					j.keyMatch = string(j.key) == j.usageKey()
				}
			default:
				j.keyByte(c)
			}
			continue
		}
		switch c {
		case '"':
			j.inString = true
			if j.depth == j.keyDepth && j.keyPos {
				if j.key == nil {
					j.key = j.keyArr[:0]
				}
				j.keyPos, j.inKey, j.key = false, true, j.key[:0]
			}
		case '{', '[':
			if !j.started {
				j.started, j.keyDepth = true, 1
				if c == '[' && j.api == gemini {
					j.keyDepth = 2
				}
			}
			j.depth++
			if j.depth == j.keyDepth {
				j.keyPos = c == '{'
			}
		case '}', ']':
			if j.depth == j.keyDepth && j.capturing {
				j.endCapture(p[mark:i])
			}
			j.depth--
			if j.depth == 0 {
				j.complete = true
				return
			}
		case ',':
			if j.depth == j.keyDepth {
				if j.capturing {
					j.endCapture(p[mark:i])
				}
				j.keyPos = true
			}
		case ':':
			if j.depth == j.keyDepth && !j.capturing {
				if j.keyMatch {
					j.capturing, j.overflow, j.cur = true, false, j.cur[:0]
					mark = i + 1
				}
				j.keyMatch = false
			}
		case ' ', '\t', '\n', '\r':
		default:
			if !j.started {
				j.complete = true // not a JSON object or array: nothing to read
				return
			}
		}
	}
	if j.capturing {
		j.capture(p[mark:])
	}
}

// indexQuoteOrBackslash returns the index of the first '"' or '\\' in p,
// or -1, with the vectorized IndexByte rather than IndexAny.
func indexQuoteOrBackslash(p []byte) int {
	q := bytes.IndexByte(p, '"')
	if q < 0 {
		q = len(p)
	}
	if b := bytes.IndexByte(p[:q], '\\'); b >= 0 {
		return b
	}
	if q == len(p) {
		return -1
	}
	return q
}

// noKey is what keyByte sets a key to that cannot be the usage key.
var noKey [16]byte

func (j *jsonParser) keyByte(c byte) {
	if !j.inKey {
		return
	}
	if len(j.key) > len(j.usageKey()) || c == 0 {
		j.key = append(j.key[:0], noKey[:]...) // longer than the key: no match
		return
	}
	j.key = append(j.key, c)
}

// capture keeps the next bytes of the usage value, up to maxUsageBytes.
func (j *jsonParser) capture(p []byte) {
	if j.overflow {
		return
	}
	if len(j.cur)+len(p) > maxUsageBytes {
		j.overflow = true
		return
	}
	j.cur = append(j.cur, p...)
}

// endCapture ends the usage value with its last bytes p.
func (j *jsonParser) endCapture(p []byte) {
	j.capture(p)
	j.capturing = false
	if !j.overflow {
		j.value, j.cur = j.cur, j.value[:0]
	}
}

func (j *jsonParser) end() {}

func (j *jsonParser) finished() bool { return j.complete }

func (j *jsonParser) usage() (pricing.Usage, bool) {
	if j.value == nil || !j.complete {
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
//     message_delta (cumulative output); the message_delta is final;
//   - Gemini: the chunk whose candidate has a finishReason; its
//     usageMetadata is final.
type sseParser struct {
	api api
	// filter marks usage-only chunks (an OpenAI chunk with a usage object
	// and no choices) for removal: the gate asked for them, the caller
	// did not.
	filter bool

	line     []byte // a line split across reads
	longLine bool   // the current line passed maxEventBytes: drop it
	data     []byte // the data lines of the current event, when copied
	// ref is the current event's data when it is one line, borrowed from
	// the caller's bytes (hasRef), so that an event received whole is not
	// copied; release copies it into data before those bytes change.
	ref      []byte
	hasRef   bool
	dropData bool // the current event passed maxEventBytes

	final    bool
	over     bool // the stream said it is done
	drop     bool // the event just dispatched is to be removed
	u        pricing.Usage
	partial  usageJSON // Anthropic: merged from message_start and message_delta
	event    int       // bytes of the current event so far
	maxEvent int       // bytes of the largest event seen
}

func (s *sseParser) feed(p []byte) {
	for len(p) > 0 && !s.finished() {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(s.line)+len(p) > maxEventBytes {
				s.longLine, s.line = true, s.line[:0]
			} else if !s.longLine {
				s.line = append(s.line, p...)
			}
			s.event += len(p)
			break
		}
		s.event += i + 1
		switch {
		case s.longLine:
			s.longLine = false
			s.dropData = true
		case len(s.line) > 0:
			s.line = append(s.line, p[:i]...)
			s.processLine(s.line)
			s.release() // s.line is about to be reused
			s.line = s.line[:0]
		default:
			s.processLine(p[:i])
		}
		p = p[i+1:]
	}
	s.release()
}

// release copies the data line the current event borrowed (see ref) into
// data. Call it before the bytes given to processLine change: at the end
// of each batch of lines.
func (s *sseParser) release() {
	if !s.hasRef {
		return
	}
	s.data = append(s.data[:0], s.ref...)
	s.ref, s.hasRef = nil, false
}

var dataPrefix = []byte("data:")

// processLine takes one line without its '\n' and reports whether it ended
// an event (then s.drop says whether to remove it).
func (s *sseParser) processLine(line []byte) (dispatched bool) {
	if s.finished() {
		s.drop = false
		return len(bytes.TrimSuffix(line, []byte("\r"))) == 0
	}
	if len(line) > maxEventBytes {
		s.dropData = true // as feed does for a line split across reads
		return false
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		s.dispatch()
		return true
	}
	if !bytes.HasPrefix(line, dataPrefix) {
		return false // event:, id:, retry: and comments carry nothing we need
	}
	v := line[len(dataPrefix):]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	if s.dropData {
		return false
	}
	if len(s.data)+len(s.ref)+len(v)+1 > maxEventBytes {
		s.dropData, s.data, s.ref, s.hasRef = true, s.data[:0], nil, false
		return false
	}
	if len(s.data)+len(s.ref) == 0 {
		s.ref, s.hasRef = v, true // an empty line before is replaced, as data's would be
		return false
	}
	s.release()
	s.data = append(s.data, '\n')
	s.data = append(s.data, v...)
	return false
}

// sseEvent is the union of the event payloads that can carry usage.
type sseEvent struct {
	Type    string             `json:"type"`
	Usage   *usageJSON         `json:"usage"`
	Choices *[]json.RawMessage `json:"choices"`
	Message *struct {
		Usage *usageJSON `json:"usage"`
	} `json:"message"`
	Response *struct {
		Usage *usageJSON `json:"usage"`
	} `json:"response"`
	// Gemini.
	UsageMetadata *usageJSON `json:"usageMetadata"`
	Candidates    []struct {
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
}

var (
	usageKey         = []byte(`"usage"`)
	nullUsageEnd     = []byte(`"usage":null}`)
	usageMetadataKey = []byte(`"usageMetadata"`)
	doneData         = []byte("[DONE]")
	messageStop      = []byte(`"message_stop"`)
)

func (s *sseParser) dispatch() {
	data := s.data
	if s.hasRef {
		data = s.ref
	}
	s.data, s.ref, s.hasRef, s.dropData, s.drop = s.data[:0], nil, false, false, false
	s.maxEvent = max(s.maxEvent, s.event)
	s.event = 0
	if len(data) == 0 {
		return
	}
	switch s.api {
	case chatCompletions, completions:
		if bytes.Equal(data, doneData) {
			s.over = true
			return
		}
		// A chunk has one usage field, at its top level; OpenAI writes it
		// last, null in every chunk but the usage one. Such a chunk needs
		// no search through its content.
		if bytes.HasSuffix(data, nullUsageEnd) {
			return
		}
	case messages:
		if bytes.Contains(data, messageStop) {
			s.over = true
			return
		}
	}
	key := usageKey
	if s.api == gemini {
		key = usageMetadataKey
	}
	if !hasObject(data, key) {
		return
	}
	if s.api == chatCompletions || s.api == completions {
		var d usageDecoder
		if usage, choices, ok := d.chunk(data); ok {
			if usage {
				s.u, s.final = d.c.convert(s.api)
				s.drop = s.filter && choices <= 0
			}
			return
		}
	}
	var ev sseEvent
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	switch s.api {
	case chatCompletions, completions:
		if ev.Usage != nil {
			s.u, s.final = ev.Usage.convert(s.api)
			s.drop = s.filter && (ev.Choices == nil || len(*ev.Choices) == 0)
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
	case gemini:
		if ev.UsageMetadata == nil {
			return
		}
		u, ok := ev.UsageMetadata.convert(s.api)
		if !ok {
			return
		}
		s.u = u // the running count, for a stream cut short
		for _, c := range ev.Candidates {
			if c.FinishReason != "" {
				s.final = true
			}
		}
	}
}

// hasObject reports whether data has the key key (quoted) whose value is
// an object: a cheap test that spares decoding the many events without
// one (OpenAI sends "usage":null in every chunk).
//
// key starts with a quote; the search is for the rest of it, whose first
// byte is far rarer in JSON than a quote, and then checks the quote before.
func hasObject(data, key []byte) bool {
	pat := key[1:]
	from := 0
	for {
		i := bytes.Index(data[from:], pat)
		if i < 0 {
			return false
		}
		i += from
		from = i + len(pat)
		if i == 0 || data[i-1] != key[0] {
			continue
		}
		rest := skipJSONSpace(data[from:])
		if len(rest) > 0 && rest[0] == ':' {
			rest = skipJSONSpace(rest[1:])
			if len(rest) > 0 && rest[0] == '{' {
				return true
			}
		}
	}
}

// skipJSONSpace returns b without its leading JSON whitespace.
func skipJSONSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// end dispatches an event the stream ended without terminating: the
// usage it carries was still reported by the provider.
func (s *sseParser) end() {
	if s.finished() {
		return
	}
	if len(s.line) > 0 && !s.longLine {
		s.processLine(s.line)
		s.line = s.line[:0]
	}
	s.dispatch() // before anything changes the bytes processLine saw
}

func (s *sseParser) finished() bool { return s.final || s.over }

func (s *sseParser) usage() (pricing.Usage, bool) {
	if s.final {
		return s.u, true
	}
	switch s.api {
	case messages:
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
	case gemini:
		return s.u, false
	}
	return pricing.Usage{}, false
}
