package pricing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file holds the one pass over a request body that ParseRequest
// makes: it validates the JSON, reads the few settings that bound a call's
// cost, and counts the prompt by the rule documented on
// Request.PromptTokens. It never builds a map or decodes a string it does
// not need, so its cost is one pass over the bytes.

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// Tokens the prompt rule adds; see Request.PromptTokens.
const (
	tokensPerObject = 4 // framing of a message or part
	tokensReply     = 3 // priming of the reply
	tokensPerSchema = 32
)

// skipKeys are top-level settings that are not part of the prompt: their
// values are validated but not counted.
var skipKeys = map[string]bool{
	"model": true, "user": true, "metadata": true, "service_tier": true, "store": true,
	"stream": true, "stream_options": true, "safety_identifier": true, "prompt_cache_key": true,
	"prompt_cache_retention": true, "seed": true, "logit_bias": true, "logprobs": true,
	"top_logprobs": true, "temperature": true, "top_p": true, "top_k": true,
	"presence_penalty": true, "frequency_penalty": true, "parallel_tool_calls": true,
	"reasoning_effort": true, "verbosity": true, "modalities": true, "n": true, "best_of": true,
	"max_tokens": true, "max_completion_tokens": true, "max_output_tokens": true,
	"background": true, "truncation": true, "include": true, "previous_response_id": true,
	"conversation": true, "stop": true, "stop_sequences": true, "service": true,
	"cachedContent": true, "cached_content": true, "safetySettings": true, "safety_settings": true,
	"labels": true, "thinking": true,
}

// rawKeys are top-level keys whose whole value the model reads as text —
// tool definitions and output schemas, keys and syntax included — so they
// count one token per byte of their JSON.
var rawKeys = map[string]bool{
	"functions": true, "response_format": true, "text": true, "tool_choice": true,
	"toolConfig": true, "tool_config": true,
}

// rawObjectKeys are keys, at any depth, whose object value is structured
// data the provider renders into the prompt as JSON: a tool call's input
// or arguments, a function response, a schema.
var rawObjectKeys = map[string]bool{
	"input": true, "args": true, "arguments": true, "response": true, "action": true,
	"parameters": true, "schema": true, "json_schema": true, "input_schema": true,
	"responseSchema": true, "response_schema": true, "responseJsonSchema": true, "response_json_schema": true,
}

// imageTypes and unpricedTypes classify content parts by their "type".
var (
	imageTypes    = map[string]bool{"image_url": true, "input_image": true, "image": true}
	unpricedTypes = map[string]bool{
		"input_audio": true, "audio": true, "file": true, "input_file": true, "document": true,
		"video": true, "input_video": true, "video_url": true,
	}
)

// scanner walks one JSON value; its methods return the first syntax
// error.
type scanner struct {
	b   []byte
	i   int
	err error

	images   int64
	unpriced string // the first content part the rule cannot price
}

var errSyntax = errors.New("invalid JSON")

func (s *scanner) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w at byte %d: %s", errSyntax, s.i, what)
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string at s.i (the opening quote) and returns its raw
// contents (escapes undecoded) and the UTF-8 length of its decoded text,
// counting each invalid byte as 3 (the size of the U+FFFD replacing it).
func (s *scanner) str() (raw []byte, n int64) {
	start := s.i + 1
	j := start
	for {
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 {
			s.i = len(s.b)
			s.fail("unterminated string")
			return nil, 0
		}
		q := j + k
		// Escaped quote? Count the backslashes before it.
		bs := 0
		for p := q - 1; p >= start && s.b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			raw = s.b[start:q]
			s.i = q + 1
			break
		}
		j = q + 1
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		n = int64(len(raw))
		if !utf8.Valid(raw) {
			n = utf8Len(raw)
		}
		if hasControl(raw) {
			s.fail("control character in string")
		}
		return raw, n
	}
	return raw, s.escaped(raw)
}

// escaped returns the decoded UTF-8 length of a string with escapes, and
// validates them.
func (s *scanner) escaped(raw []byte) int64 {
	var n int64
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			k = len(raw)
		}
		n += utf8Len(raw[:k])
		for _, c := range raw[:k] {
			if c < 0x20 {
				s.fail("control character in string")
			}
		}
		raw = raw[k:]
		if len(raw) == 0 {
			break
		}
		if len(raw) < 2 {
			s.fail("bad escape")
			return n
		}
		switch raw[1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			n++
			raw = raw[2:]
		case 'u':
			r, ok := hex4(raw[2:])
			if !ok {
				s.fail("bad \\u escape")
				return n
			}
			raw = raw[6:]
			if r >= 0xD800 && r < 0xDC00 && len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
				if r2, ok := hex4(raw[2:]); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					n += 4 // a surrogate pair: one 4-byte character
					raw = raw[6:]
					continue
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				n += 3 // a lone surrogate decodes to U+FFFD
			} else {
				n += int64(utf8.RuneLen(r))
			}
		default:
			s.fail("bad escape")
			return n
		}
	}
	return n
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(v), err == nil
}

// utf8Len is len(b), with each byte of an invalid sequence counted as 3.
func utf8Len(b []byte) int64 {
	if utf8.Valid(b) {
		return int64(len(b))
	}
	var n int64
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			n += 3
		} else {
			n += int64(size)
		}
		b = b[size:]
	}
	return n
}

// keyBytes returns a key's text: its raw bytes, decoded only when it has
// escapes, so that comparing keys allocates nothing.
func keyBytes(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return []byte(decodeString(raw))
}

// decodeString decodes a short raw string (a model name, a type).
func decodeString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	s, err := strconv.Unquote(string(q))
	if err != nil {
		return string(raw) // unreachable for a string str accepted, but never fails
	}
	return s
}

// number reads a JSON number and returns its text.
func (s *scanner) number() []byte {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		k := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		return s.i - k
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		s.fail("bad number")
		return nil
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			s.fail("bad number")
			return nil
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			s.fail("bad number")
			return nil
		}
	}
	return s.b[start:s.i]
}

func (s *scanner) literal(word string) {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.fail("bad literal")
		return
	}
	s.i += len(word)
}

// skip validates and skips one value, counting nothing.
func (s *scanner) skip(depth int) {
	s.walk(depth, false)
}

// walk reads one value and returns the tokens the prompt rule counts for
// it. With count false it only validates (and returns 0).
func (s *scanner) walk(depth int, count bool) int64 {
	if depth > maxDepth {
		s.fail("nested too deeply")
		return 0
	}
	switch s.peek() {
	case '"':
		_, n := s.str()
		if !count {
			return 0
		}
		return n
	case '{':
		return s.object(depth, count)
	case '[':
		s.i++
		var n int64
		if s.peek() == ']' {
			s.i++
			return 0
		}
		for s.err == nil {
			n += s.walk(depth+1, count)
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return n
			default:
				s.fail("expected , or ]")
			}
		}
		return 0
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	case 0:
		s.fail("unexpected end")
	default:
		if s.number() != nil && count {
			return 1 // a number in a prompt is a token id, or one token of text
		}
	}
	return 0
}

// object reads an object, classifying content parts by their keys: an
// image's text is replaced by one image, and parts the rule cannot price
// are remembered.
func (s *scanner) object(depth int, count bool) int64 {
	s.i++ // {
	var n int64
	var typ string
	blob, mime := false, ""
	if s.peek() == '}' {
		s.i++
		if count {
			return tokensPerObject
		}
		return 0
	}
	for s.err == nil {
		if s.peek() != '"' {
			s.fail("expected a key")
			return 0
		}
		rawKey, _ := s.str()
		if s.peek() != ':' {
			s.fail("expected :")
			return 0
		}
		s.i++
		key := keyBytes(rawKey)
		switch {
		case !count:
			s.skip(depth + 1)
		case string(key) == "type" && s.peek() == '"':
			raw, l := s.str()
			if len(raw) < 32 {
				typ = decodeString(raw)
			}
			n += l
		case (string(key) == "mimeType" || string(key) == "mime_type") && s.peek() == '"':
			raw, l := s.str()
			if len(raw) < 128 {
				mime = decodeString(raw)
			}
			n += l
		case rawObjectKeys[string(key)] && s.peek() == '{':
			start := s.i
			s.skip(depth + 1)
			n += int64(s.i - start)
		default:
			if k := string(key); k == "data" || k == "fileUri" || k == "file_uri" {
				blob = true
			}
			n += s.walk(depth+1, count)
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			if !count {
				return 0
			}
			switch {
			case imageTypes[typ]:
				s.images++
				return 0
			case unpricedTypes[typ]:
				if s.unpriced == "" {
					s.unpriced = typ
				}
				return 0
			case blob && mime != "":
				// A Gemini inlineData or fileData part.
				if len(mime) > 6 && mime[:6] == "image/" {
					s.images++
				} else if s.unpriced == "" {
					s.unpriced = mime
				}
				return 0
			}
			return n + tokensPerObject
		default:
			s.fail("expected , or }")
		}
	}
	return 0
}

// hasControl reports whether p has a byte below 0x20, eight bytes at a
// time: a byte x of w is below 0x20 exactly when x-0x20 borrows into its
// top bit while x's own top bit is clear.
func hasControl(p []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(p) >= 8 {
		w := binary.LittleEndian.Uint64(p)
		if (w-0x20*ones)&^w&highs != 0 {
			return true
		}
		p = p[8:]
	}
	for _, c := range p {
		if c < 0x20 {
			return true
		}
	}
	return false
}
