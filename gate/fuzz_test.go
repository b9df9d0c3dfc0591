package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/pricing"
	"github.com/llmbudget/budget/store/memory"
)

// The usage parsers get arbitrary bytes from upstream. These fuzz targets
// check that they never panic, that how the bytes are split across reads
// does not change what they find, and that the gate then settles exactly
// the reported cost — or, when nothing usable was reported, the estimate,
// never zero. Seed corpora: testdata/fuzz/FuzzJSONUsage and
// testdata/fuzz/FuzzSSEUsage.

func FuzzJSONUsage(f *testing.F) {
	f.Add(uint8(0), uint16(7), []byte(`{"id":"x","usage":{"prompt_tokens":1200,"completion_tokens":300,"prompt_tokens_details":{"cached_tokens":200}},"user":null}`))
	f.Add(uint8(4), uint16(1), []byte(`{"usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":3}}`))
	f.Fuzz(func(t *testing.T, kind uint8, split uint16, data []byte) {
		fuzzUsage(t, apiOf(kind), false, split, data)
	})
}

func FuzzSSEUsage(f *testing.F) {
	f.Add(uint8(0), uint16(5), []byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n"))
	f.Add(uint8(4), uint16(3), []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"+
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":30}}\n\n"))
	f.Fuzz(func(t *testing.T, kind uint8, split uint16, data []byte) {
		fuzzUsage(t, apiOf(kind), true, split, data)
	})
}

var fuzzAPIs = [...]struct {
	api        api
	path, body string
}{
	{chatCompletions, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"stream":true,"stream_options":{"include_usage":true}}`},
	{completions, "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"hi","max_tokens":50}`},
	{responses, "/v1/responses", `{"model":"gpt-4o","input":"hi","max_output_tokens":50}`},
	{embeddings, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hi"}`},
	{messages, "/v1/messages", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}],"max_tokens":50}`},
	{gemini, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", `{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":50}}`},
}

func apiOf(kind uint8) int { return int(kind) % len(fuzzAPIs) }

func newParser(a api, stream bool) usageParser {
	if stream {
		return &sseParser{api: a}
	}
	return &jsonParser{api: a}
}

// parse feeds data to a fresh parser in pieces of size chunk.
func parse(a api, stream bool, data []byte, chunk int) (pricing.Usage, bool) {
	p := newParser(a, stream)
	for len(data) > 0 {
		n := min(chunk, len(data))
		p.feed(data[:n])
		data = data[n:]
	}
	p.end()
	return p.usage()
}

type fuzzEnv struct {
	m      *budget.Manager
	prices *pricing.Table
	users  atomic.Int64
}

var (
	fuzzOnce sync.Once
	fuzzE    *fuzzEnv
)

func env(t *testing.T) *fuzzEnv {
	fuzzOnce.Do(func() {
		f, err := os.Open("testdata/prices.json")
		if err != nil {
			panic(err)
		}
		defer f.Close()
		var p pricing.Table
		if err := p.LoadLiteLLM(f); err != nil {
			panic(err)
		}
		plan := budget.DefaultUserPlan()
		plan.Limit = budget.MustAmount("1000000000")
		fuzzE = &fuzzEnv{m: budget.NewManager(memory.New(), budget.Options{UserPlan: &plan}), prices: &p}
	})
	return fuzzE
}

// chunkedBody returns data in reads of at most n bytes, as a network would.
type chunkedBody struct {
	data []byte
	n    int
}

func (c *chunkedBody) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

func (c *chunkedBody) Close() error { return nil }

func fuzzUsage(t *testing.T, i int, stream bool, split uint16, data []byte) {
	a, path, body := fuzzAPIs[i].api, fuzzAPIs[i].path, fuzzAPIs[i].body
	chunk := int(split%512) + 1

	// Splitting must not matter.
	whole, wholeFinal := parse(a, stream, data, len(data)+1)
	u, final := parse(a, stream, data, chunk)
	if u != whole || final != wholeFinal {
		t.Fatalf("in %d-byte pieces: %+v, %v; whole: %+v, %v", chunk, u, final, whole, wholeFinal)
	}

	// Through the gate, upstream answering data.
	e := env(t)
	contentType := "application/json"
	if stream {
		contentType = "text/event-stream"
	}
	var settleErr error
	rt := New(e.m, e.prices, Options{
		Base: roundTrip(func(*http.Request) (*http.Response, error) {
			return &http.Response{
				StatusCode: 200, Header: http.Header{"Content-Type": {contentType}},
				Body: &chunkedBody{data: data, n: chunk},
			}, nil
		}),
		OnError: func(_ *http.Request, err error) { settleErr = err },
	})
	user := fmt.Sprintf("fuzz-%d", e.users.Add(1))
	req, _ := http.NewRequestWithContext(WithUser(context.Background(), user), http.MethodPost, "http://upstream"+path, strings.NewReader(body))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != string(data) {
		t.Fatalf("the body did not pass through untouched: %v", err)
	}
	if settleErr != nil {
		t.Fatal(settleErr)
	}

	var r pricing.Request
	if a == gemini {
		r, _ = pricing.ParseGeminiRequest("gemini-2.5-flash", []byte(body))
	} else {
		r, _ = pricing.ParseRequest([]byte(body))
	}
	price, _ := e.prices.Lookup(r.Model)
	q, _ := price.Estimate(r)
	want := q.Cost
	if c, err := price.Cost(u); err == nil {
		if final && u != (pricing.Usage{}) {
			want = c // the reported usage
		} else if c.GreaterThan(want) {
			want = c // partial usage above the estimate
		}
	}
	page, err := e.m.History(context.Background(), budget.UsageQuery{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 {
		t.Fatalf("%d records, want 1", len(page.Records))
	}
	rec := page.Records[0]
	if !rec.Cost.Equal(want) {
		t.Fatalf("settled %s, want %s (usage %+v, final %v, estimate %s)", rec.Cost, want, u, final, q.Cost)
	}
	if rec.Cost.Sign() <= 0 {
		t.Fatalf("settled %s: never zero", rec.Cost)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzDecodeUsage holds the hand-written usage decoder to encoding/json:
// whatever it accepts, encoding/json decodes without error to the same
// counts, and parseUsage answers as encoding/json alone does for every
// API. Seed corpus: testdata/fuzz/FuzzDecodeUsage.
func FuzzDecodeUsage(f *testing.F) {
	for _, s := range []string{
		`{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":200,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"accepted_prediction_tokens":0}}`,
		`{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":3,"cache_creation_input_tokens":null,"service_tier":"standard"}`,
		`{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}`,
		`{"promptTokenCount":8,"candidatesTokenCount":12,"thoughtsTokenCount":4,"totalTokenCount":24,"promptTokensDetails":[{"modality":"TEXT","tokenCount":8}]}`,
		` { "PROMPT_TOKENS" : 7 , "Completion_Tokens":-0, "prompt_tokens_details":{"cached_tokens":1},"prompt_tokens_details":{} } `,
		`{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":1},"prompt_tokens_details":null,"prompt_tokens_details":{}}`,
		`{"prompt_tokens":1.0,"completion_tokens":2}`,
		`{"prompt_tokens":1e2,"completion_tokens":"2"}`,
		`{"prompt_tokens":99999999999999999999,"completion_tokens":2}`,
		`{"prompt\u005ftokens":1,"completion_tokens":2}`,
		`{"input_tokenſ":1,"output_tokens":2}`,
		`{"x":[1,{"y":"\"\\\/\b\f\n\r\t\u00e9"},true,false,null,-1.5e-3],"prompt_tokens":3,"completion_tokens":4}`,
		`{"prompt_tokens":1,"completion_tokens":2} x`,
		`{"prompt_tokens":1,"completion_tokens":2,}`,
		`{"prompt_tokens":01}`,
		`null`, `[]`, `{}`, `{"prompt_tokens_details":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d usageDecoder
		if d.decode(data) {
			var u usageJSON
			if err := json.Unmarshal(data, &u); err != nil {
				t.Fatalf("decoded %q, which encoding/json rejects: %v", data, err)
			}
			if want := u.counts(); d.c != want {
				t.Fatalf("decoded %q as %+v, encoding/json as %+v", data, d.c, want)
			}
			for _, pd := range [...]struct {
				got  bool
				want *usageDetails
			}{{d.details[0], u.PromptDetails}, {d.details[1], u.InputDetails}} {
				if pd.got != (pd.want != nil) {
					t.Fatalf("decoded %q: details present %v, encoding/json says %v", data, pd.got, pd.want != nil)
				}
			}
		}
		for _, a := range fuzzAPIs {
			gu, gok := parseUsage(a.api, data)
			wu, wok := parseUsageSlow(a.api, data)
			if gu != wu || gok != wok {
				t.Fatalf("api %d, %q: parseUsage = %+v, %v; encoding/json: %+v, %v", a.api, data, gu, gok, wu, wok)
			}
		}
	})
}

// FuzzDecodeChunk holds the hand-written chunk decoder to encoding/json:
// whatever it accepts, encoding/json decodes into an sseEvent without
// error, to the same usage counts and number of choices.
func FuzzDecodeChunk(f *testing.F) {
	for _, s := range []string{
		`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":200,"audio_tokens":0}}}`,
		`{"id":"x","choices":[{"index":0,"delta":{"content":"hi \"there\""},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"choices":null,"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"usage":null,"choices":[1,2,3]}`,
		`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`,
		`{"USAGE":{"prompt_tokens":1,"completion_tokens":2},"Choices":[]}`,
		`{"type":"x","usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"candidates":5,"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"choices":{},"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"choices":[1,],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"usage":{"prompt_tokens":1,"completion_tokens":2}} x`,
		`{"usage":{"prompt_tokens":1,"completion_tokens":2},}`,
		`{}`, `[]`, `null`, ` { "usage" : { } } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d usageDecoder
		usage, choices, ok := d.chunk(data)
		if !ok {
			return
		}
		var ev sseEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("decoded %q, which encoding/json rejects: %v", data, err)
		}
		if usage != (ev.Usage != nil) {
			t.Fatalf("decoded %q: usage present %v, encoding/json says %v", data, usage, ev.Usage != nil)
		}
		if usage {
			if want := ev.Usage.counts(); d.c != want {
				t.Fatalf("decoded %q as %+v, encoding/json as %+v", data, d.c, want)
			}
		}
		want := -1
		if ev.Choices != nil {
			want = len(*ev.Choices)
		}
		if choices != want {
			t.Fatalf("decoded %q: %d choices, encoding/json %d", data, choices, want)
		}
	})
}

// FuzzApply checks apply against a plain rebuild of the body, for edits
// drawn from seed (insertions, replacements that grow and that shrink),
// on a body with cap spare bytes: in place or copied, the bytes come out
// the same, and the caller's body is not changed when it was copied.
//
//	go test ./gate -run '^$' -fuzz FuzzApply
func FuzzApply(f *testing.F) {
	f.Add(`{"model":"gpt-4o","stream":true}`, uint64(1), uint8(64))
	f.Add(`{"max_tokens":500,"messages":[]}`, uint64(7), uint8(0))
	f.Add(`{}`, uint64(3), uint8(40))
	f.Fuzz(func(t *testing.T, body string, seed uint64, spare uint8) {
		r := rand.New(rand.NewPCG(seed, seed>>1))
		var edits []edit
		at := 0
		for at <= len(body) && len(edits) < 4 {
			at += r.IntN(len(body) - at + 1)
			end := at + r.IntN(min(4, len(body)-at)+1)
			edits = append(edits, edit{at: at, end: end, text: strings.Repeat("x", r.IntN(6))})
			at = end
			if r.IntN(3) == 0 {
				break
			}
		}
		var want strings.Builder
		prev := 0
		for _, e := range edits {
			want.WriteString(body[prev:e.at])
			want.WriteString(e.text)
			prev = e.end
		}
		want.WriteString(body[prev:])
		buf := append(make([]byte, 0, len(body)+int(spare)), body...)
		got := apply(buf, slices.Clone(edits))
		if string(got) != want.String() {
			t.Fatalf("apply(%q, %+v) = %q, want %q", body, edits, got, want.String())
		}
		grows := true
		for _, e := range edits {
			grows = grows && len(e.text) >= e.end-e.at
		}
		inPlace := cap(got) > 0 && cap(buf) > 0 && &got[:cap(got)][0] == &buf[:cap(buf)][0]
		switch {
		case !inPlace && string(buf) != body:
			t.Fatalf("apply copied the body but changed the original to %q", buf)
		case len(edits) > 0 && grows && want.Len() <= cap(buf) && want.Len() > 0 && !inPlace:
			t.Fatalf("apply copied a body it had room to edit in place")
		}
	})
}

// TestFilterKeepsLineAcrossReads: through the gate, which drops the usage
// chunk it asked for, an event whose data line ends one upstream read and
// whose blank line starts the next is parsed from a copy, not from the
// filter's buffer, which moves between the two reads.
func TestFilterKeepsLineAcrossReads(t *testing.T) {
	first := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n"
	usage := "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":123,\"completion_tokens\":45,\"total_tokens\":168}}\n"
	data := []byte(first + usage + "\ndata: [DONE]\n\n")
	e := env(t)
	rt := New(e.m, e.prices, Options{
		Base: roundTrip(func(*http.Request) (*http.Response, error) {
			return &http.Response{
				StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
				// The first read ends right after the usage line.
				Body: &chunkedBody{data: data, n: len(first + usage)},
			}, nil
		}),
	})
	user := fmt.Sprintf("filter-%d", e.users.Add(1))
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"stream":true}`
	req, _ := http.NewRequestWithContext(WithUser(context.Background(), user), http.MethodPost, "http://upstream/v1/chat/completions", strings.NewReader(body))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != first+"data: [DONE]\n\n" {
		t.Fatalf("the caller read %q (%v), want the first chunk and [DONE]", got, err)
	}
	price, _ := e.prices.Lookup("gpt-4o")
	want, _ := price.Cost(pricing.Usage{InputTokens: 123, OutputTokens: 45})
	page, err := e.m.History(context.Background(), budget.UsageQuery{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || !page.Records[0].Cost.Equal(want) {
		t.Fatalf("records %+v, want one of %s (the usage chunk's)", page.Records, want)
	}
}
