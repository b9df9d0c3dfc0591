package gate

// decode decodes the usage object raw into d.c as json.Unmarshal would
// into a zero usageJSON (then usageJSON.counts), and reports whether it could:
// false means "ask encoding/json", never "invalid". It is the per-call hot
// path: a few hundred bytes of known integer fields, decoded without
// reflection or allocation. It accepts only the plain shape real
// providers send — an object whose keys are ASCII without escapes and
// whose known fields hold integers or null — and validates every value it
// skips; anything else (escaped or non-ASCII keys, which encoding/json
// may fold onto a field; fractions, exponents and long numbers; type
// mismatches; syntax errors) goes to encoding/json, so the usage read is
// encoding/json's on every input. FuzzDecodeUsage holds it to that.
func (d *usageDecoder) decode(raw []byte) bool {
	d.buf = raw
	return d.object(-1) && d.end()
}

// The known fields, in the order of usageFieldNames.
const (
	fPromptTokens = iota
	fCompletionTokens
	fInputTokens
	fOutputTokens
	fCacheReadInputTokens
	fCacheCreationInputTokens
	fPromptTokenCount
	fCachedContentTokenCount
	fCandidatesTokenCount
	fThoughtsTokenCount
	fToolUsePromptTokenCount
	fPromptCached // prompt_tokens_details.cached_tokens
	fInputCached  // input_tokens_details.cached_tokens
	nUsageFields
)

// Keys of the usage object: the integer fields, then the two details
// objects (index nUsageFields-2+k for detail k).
var usageFieldNames = [...]string{
	fPromptTokens:             "prompt_tokens",
	fCompletionTokens:         "completion_tokens",
	fInputTokens:              "input_tokens",
	fOutputTokens:             "output_tokens",
	fCacheReadInputTokens:     "cache_read_input_tokens",
	fCacheCreationInputTokens: "cache_creation_input_tokens",
	fPromptTokenCount:         "promptTokenCount",
	fCachedContentTokenCount:  "cachedContentTokenCount",
	fCandidatesTokenCount:     "candidatesTokenCount",
	fThoughtsTokenCount:       "thoughtsTokenCount",
	fToolUsePromptTokenCount:  "toolUsePromptTokenCount",
	fPromptCached:             "prompt_tokens_details",
	fInputCached:              "input_tokens_details",
}

// usageDecoder is decodeUsage's scanner; ok false means "ask
// encoding/json", never "invalid".
type usageDecoder struct {
	buf     []byte
	i       int
	c       usageCounts
	details [2]bool // prompt_tokens_details, input_tokens_details present and not null
}

// maxSkipDepth bounds the nesting the decoder skips itself.
const maxSkipDepth = 64

func (d *usageDecoder) ws() {
	for d.i < len(d.buf) {
		switch d.buf[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end reports whether only whitespace is left.
func (d *usageDecoder) end() bool {
	d.ws()
	return d.i == len(d.buf)
}

// object decodes the usage object (detail < 0) or a details object
// (detail 0 or 1), starting at optional whitespace before its '{'.
func (d *usageDecoder) object(detail int) bool {
	d.ws()
	if d.i >= len(d.buf) || d.buf[d.i] != '{' {
		return false
	}
	d.i++
	d.ws()
	if d.i < len(d.buf) && d.buf[d.i] == '}' {
		d.i++
		return true
	}
	for {
		d.ws()
		key, ok := d.key()
		if !ok {
			return false
		}
		d.ws()
		if d.i >= len(d.buf) || d.buf[d.i] != ':' {
			return false
		}
		d.i++
		d.ws()
		f := -1
		if detail == 0 || detail == 1 {
			if asciiFoldEqual(key, "cached_tokens") {
				f = fPromptCached + detail
			}
		} else {
			for k, name := range usageFieldNames {
				if asciiFoldEqual(key, name) {
					f = k
					break
				}
			}
		}
		switch {
		case f < 0:
			if !d.skip(0) {
				return false
			}
		case detail < 0 && (f == fPromptCached || f == fInputCached):
			k := f - fPromptCached
			if d.null() {
				d.details[k], d.c.set[f], d.c.val[f] = false, false, 0
				break
			}
			if !d.details[k] {
				// A new object, as encoding/json allocates for a nil
				// pointer; a repeated key decodes into the same one.
				d.details[k], d.c.set[f], d.c.val[f] = true, false, 0
			}
			if !d.object(k) {
				return false
			}
		default:
			if d.null() {
				d.c.set[f], d.c.val[f] = false, 0
				break
			}
			n, ok := d.int()
			if !ok {
				return false
			}
			d.c.val[f], d.c.set[f] = n, true
		}
		d.ws()
		if d.i >= len(d.buf) {
			return false
		}
		switch d.buf[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// key reads a key: a string of printable ASCII without escapes.
func (d *usageDecoder) key() ([]byte, bool) {
	if d.i >= len(d.buf) || d.buf[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.buf); j++ {
		switch c := d.buf[j]; {
		case c == '"':
			d.i = j + 1
			return d.buf[start:j], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// asciiFoldEqual reports whether the ASCII key equals name with ASCII
// letters compared without case, as encoding/json matches field names.
func asciiFoldEqual(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		a, b := key[i], name[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func (d *usageDecoder) null() bool {
	if len(d.buf)-d.i >= 4 && string(d.buf[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// int reads an integer of at most 18 digits (so it cannot overflow) not
// followed by a fraction or exponent.
func (d *usageDecoder) int() (int64, bool) {
	j := d.i
	neg := j < len(d.buf) && d.buf[j] == '-'
	if neg {
		j++
	}
	start := j
	var n int64
	for j < len(d.buf) && '0' <= d.buf[j] && d.buf[j] <= '9' {
		n = n*10 + int64(d.buf[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 18 || (digits > 1 && d.buf[start] == '0') {
		return 0, false
	}
	if j < len(d.buf) {
		switch d.buf[j] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	d.i = j
	if neg {
		n = -n
	}
	return n, true
}

// skip validates and skips one JSON value of an unknown field.
func (d *usageDecoder) skip(depth int) bool {
	if d.i >= len(d.buf) || depth > maxSkipDepth {
		return false
	}
	switch c := d.buf[d.i]; {
	case c == '"':
		return d.skipString()
	case c == '{' || c == '[':
		d.i++
		d.ws()
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		if d.i < len(d.buf) && d.buf[d.i] == closing {
			d.i++
			return true
		}
		for {
			d.ws()
			if c == '{' {
				if d.i >= len(d.buf) || d.buf[d.i] != '"' || !d.skipString() {
					return false
				}
				d.ws()
				if d.i >= len(d.buf) || d.buf[d.i] != ':' {
					return false
				}
				d.i++
				d.ws()
			}
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			if d.i >= len(d.buf) {
				return false
			}
			switch d.buf[d.i] {
			case ',':
				d.i++
			case closing:
				d.i++
				return true
			default:
				return false
			}
		}
	case c == '-' || ('0' <= c && c <= '9'):
		return d.skipNumber()
	default:
		for _, lit := range [...]string{"null", "true", "false"} {
			if len(d.buf)-d.i >= len(lit) && string(d.buf[d.i:d.i+len(lit)]) == lit {
				d.i += len(lit)
				return true
			}
		}
		return false
	}
}

// skipString skips a string, checking its escapes and control bytes as
// encoding/json's scanner does (it does not check UTF-8).
func (d *usageDecoder) skipString() bool {
	j := d.i + 1
	for j < len(d.buf) {
		c := d.buf[j]
		switch {
		case c == '"':
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j+1 >= len(d.buf) {
				return false
			}
			switch d.buf[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(d.buf) {
					return false
				}
				for _, h := range d.buf[j+2 : j+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				j += 6
			default:
				return false
			}
		default:
			j++
		}
	}
	return false
}

// skipNumber skips a number by JSON's grammar.
func (d *usageDecoder) skipNumber() bool {
	b, j := d.buf, d.i
	digits := func() int {
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	if j < len(b) && b[j] == '0' {
		j++
	} else if digits() == 0 {
		return false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if digits() == 0 {
			return false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return false
		}
	}
	d.i = j
	return true
}

// chunk decodes an OpenAI chat completion or completion stream chunk as
// json.Unmarshal would into a zero sseEvent, for the two fields those
// APIs read: usage (into d.c, when usage is true: present and not null)
// and the number of choices (-1 when absent or null). ok false means "ask
// encoding/json", never "invalid": besides what decode leaves to it, a
// repeated usage or choices key, choices that are not an array, and any
// key encoding/json would fold onto another sseEvent field (whose type
// it would check). FuzzDecodeChunk holds it to encoding/json.
func (d *usageDecoder) chunk(raw []byte) (usage bool, choices int, ok bool) {
	d.buf, d.i, choices = raw, 0, -1
	d.ws()
	if d.i >= len(d.buf) || d.buf[d.i] != '{' {
		return false, 0, false
	}
	d.i++
	d.ws()
	if d.i < len(d.buf) && d.buf[d.i] == '}' {
		d.i++
		return false, -1, d.end()
	}
	var seenUsage, seenChoices bool
	for {
		d.ws()
		key, ok := d.key()
		if !ok {
			return false, 0, false
		}
		d.ws()
		if d.i >= len(d.buf) || d.buf[d.i] != ':' {
			return false, 0, false
		}
		d.i++
		d.ws()
		switch {
		case asciiFoldEqual(key, "usage"):
			if seenUsage {
				return false, 0, false
			}
			seenUsage = true
			if !d.null() {
				if !d.object(-1) {
					return false, 0, false
				}
				usage = true
			}
		case asciiFoldEqual(key, "choices"):
			if seenChoices {
				return false, 0, false
			}
			seenChoices = true
			if !d.null() {
				if choices, ok = d.countArray(); !ok {
					return false, 0, false
				}
			}
		case asciiFoldEqual(key, "type"), asciiFoldEqual(key, "message"), asciiFoldEqual(key, "response"),
			asciiFoldEqual(key, "usageMetadata"), asciiFoldEqual(key, "candidates"):
			return false, 0, false
		default:
			if !d.skip(0) {
				return false, 0, false
			}
		}
		d.ws()
		if d.i >= len(d.buf) {
			return false, 0, false
		}
		switch d.buf[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return usage, choices, d.end()
		default:
			return false, 0, false
		}
	}
}

// countArray validates and skips an array, returning its length.
func (d *usageDecoder) countArray() (int, bool) {
	if d.i >= len(d.buf) || d.buf[d.i] != '[' {
		return 0, false
	}
	d.i++
	d.ws()
	if d.i < len(d.buf) && d.buf[d.i] == ']' {
		d.i++
		return 0, true
	}
	for n := 1; ; n++ {
		d.ws()
		if !d.skip(1) {
			return 0, false
		}
		d.ws()
		if d.i >= len(d.buf) {
			return 0, false
		}
		switch d.buf[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return n, true
		default:
			return 0, false
		}
	}
}
