package gate

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
)

// The gate changes a request body in two ways only — asking an OpenAI
// stream for its usage, and lowering an output limit to fit the budget —
// and does both by splicing bytes: every other byte of the body reaches
// upstream as the caller wrote it, in its order and spacing, and nothing is
// decoded and re-encoded. The body has already been validated by
// pricing.ParseRequest, so the scanner here only skips.

// span is a value's position in a body: b[start:end].
type span struct{ start, end int }

func (s span) ok() bool { return s.end > s.start }

// member is one key of an object and its value.
type member struct {
	key   []byte // raw, escapes undecoded
	value span
}

// members returns the members of the object at b[s.start:s.end], appended
// to buf[:0], and the position of its closing brace. A nil buf is
// allocated with room for most objects.
func members(b []byte, s span, buf []member) (ms []member, closing int) {
	ms = buf[:0]
	if ms == nil {
		ms = make([]member, 0, 8)
	}
	i := s.start + 1
	for {
		i = skipSpace(b, i)
		if b[i] == '}' {
			return ms, i
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		kEnd := skipString(b, i)
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		i = skipSpace(b, i+1) // the colon
		vEnd := skipValue(b, i)
		ms = append(ms, member{key: key, value: span{i, vEnd}})
		i = vEnd
	}
}

// last returns the value of the last member named one of keys (of
// duplicates the providers take the last), matching escaped keys too.
func last(ms []member, keys ...string) (span, string) {
	for i := len(ms) - 1; i >= 0; i-- {
		k := ms[i].key
		if bytes.IndexByte(k, '\\') >= 0 {
			if s, err := strconv.Unquote(`"` + string(k) + `"`); err == nil {
				k = []byte(s)
			}
		}
		for _, key := range keys {
			if string(k) == key {
				return ms[i].value, key
			}
		}
	}
	return span{}, ""
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string starting at b[i] (a quote).
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		q := j + k
		bs := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the end of the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// edit replaces b[at:end] with text (an insertion when end == at).
type edit struct {
	at, end int
	text    string
}

// apply returns body with the edits made. When no edit shortens the body
// and its capacity has room for the result (readBody leaves bodySlack), it
// edits body in place, from the end, so that every byte moves right and
// no byte is overwritten before it moved; otherwise it makes one copy.
func apply(body []byte, edits []edit) []byte {
	if len(edits) == 0 {
		return body
	}
	slices.SortStableFunc(edits, func(a, b edit) int { return a.at - b.at })
	n, grows := len(body), true
	for _, e := range edits {
		d := len(e.text) - (e.end - e.at)
		n += d
		grows = grows && d >= 0
	}
	if grows && n <= cap(body) {
		out := body[:n]
		end, dst := len(body), n // body[:end] has not moved; out[dst:] is done
		for i := len(edits) - 1; i >= 0; i-- {
			e := edits[i]
			dst -= end - e.end
			copy(out[dst:], body[e.end:end])
			dst -= len(e.text)
			copy(out[dst:], e.text)
			end = e.at
		}
		return out
	}
	out := make([]byte, 0, n)
	prev := 0
	for _, e := range edits {
		out = append(out, body[prev:e.at]...)
		out = append(out, e.text...)
		prev = e.end
	}
	return append(out, body[prev:]...)
}

// topLevel is the parsed top-level object of a request body.
type topLevel struct {
	body    []byte
	ms      []member
	closing int // position of the final '}'
}

// parseTop parses body's top-level object, its members appended to
// buf[:0] (see members).
func parseTop(body []byte, buf []member) topLevel {
	start := skipSpace(body, 0)
	ms, closing := members(body, span{start, len(body)}, buf)
	return topLevel{body: body, ms: ms, closing: closing}
}

// insert returns an edit adding `"key":value` as the object's last member.
func (t topLevel) insert(key, value string) edit {
	sep := ","
	if len(t.ms) == 0 {
		sep = ""
	}
	return edit{at: t.closing, end: t.closing, text: sep + `"` + key + `":` + value}
}

var errStreamOptions = errors.New(`"stream_options" is not an object`)

// includeUsage returns the edits that set stream_options.include_usage to
// true, and whether any were needed: a body that already asks for usage
// needs none, and its caller expects the usage chunk.
func includeUsage(t topLevel) ([]edit, bool, error) {
	so, _ := last(t.ms, "stream_options")
	switch {
	case !so.ok():
		return []edit{t.insert("stream_options", `{"include_usage":true}`)}, true, nil
	case string(t.body[so.start:so.end]) == "null":
		return []edit{{so.start, so.end, `{"include_usage":true}`}}, true, nil
	case t.body[so.start] != '{':
		return nil, false, errStreamOptions
	}
	ms, closing := members(t.body, so, nil)
	iu, _ := last(ms, "include_usage")
	switch {
	case !iu.ok():
		text := `"include_usage":true`
		if len(ms) > 0 {
			text += ","
		}
		return []edit{{so.start + 1, so.start + 1, text}}, true, nil
	case string(t.body[iu.start:iu.end]) == "true":
		return nil, false, nil
	}
	_ = closing
	return []edit{{iu.start, iu.end, "true"}}, true, nil
}

// limitEdits returns the edits that lower the request's output limits to
// n: every limit key present is set to n where it is above n (or null);
// without one, the API's own key is added. Gemini's limit is
// generationConfig.maxOutputTokens.
func limitEdits(t topLevel, a api, n int64) []edit {
	val := strconv.FormatInt(n, 10)
	lower := func(s span) []edit {
		raw := t.body[s.start:s.end]
		if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil && v <= n && v > 0 {
			return nil
		}
		return []edit{{s.start, s.end, val}}
	}
	if a == gemini {
		gc, key := last(t.ms, "generationConfig", "generation_config")
		if !gc.ok() || t.body[gc.start] != '{' {
			if gc.ok() { // null
				return []edit{{gc.start, gc.end, `{"maxOutputTokens":` + val + `}`}}
			}
			return []edit{t.insert("generationConfig", `{"maxOutputTokens":`+val+`}`)}
		}
		ms, _ := members(t.body, gc, nil)
		if s, _ := last(ms, "maxOutputTokens", "max_output_tokens"); s.ok() {
			return lower(s)
		}
		k := "maxOutputTokens"
		if key == "generation_config" {
			k = "max_output_tokens"
		}
		text := `"` + k + `":` + val
		if len(ms) > 0 {
			text += ","
		}
		return []edit{{gc.start + 1, gc.start + 1, text}}
	}
	var out []edit
	found := false
	for _, key := range [...]string{"max_tokens", "max_completion_tokens", "max_output_tokens"} {
		if s, _ := last(t.ms, key); s.ok() {
			found = true
			out = append(out, lower(s)...)
		}
	}
	if !found {
		out = append(out, t.insert(a.limitKey(), val))
	}
	return out
}
