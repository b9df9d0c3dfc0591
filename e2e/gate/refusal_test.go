package gate_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/internal/gatetest"
)

// Refusals and gate.Client as the SDKs see them; the gate's other refusal
// tests are in gate/refusal_test.go.

// countingRT counts the requests an SDK sends, retries included.
type countingRT struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// With RefuseWithStatus, a refusal reaches an SDK as its own API error:
// status 429, code budget_exceeded, and no retry.
func TestRefuseWithStatus(t *testing.T) {
	h := newHarness(t, "0.001", gate.Options{RefuseWithStatus: true})
	cnt := &countingRT{base: h.Client.Transport}
	hc := &http.Client{Transport: cnt}
	oc := openai.NewClient(option.WithHTTPClient(hc), option.WithBaseURL(h.Up.URL+"/v1"), option.WithAPIKey("k")) // default retries
	_, err := oc.Chat.Completions.New(h.Ctx, chatParams("gpt-4o"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "budget_exceeded" || apiErr.Type != "insufficient_quota" ||
		!strings.Contains(apiErr.Message, `"alice"`) || !strings.Contains(apiErr.Message, "2025-04-01T00:00:00Z") {
		t.Fatalf("openai-go: err = %v; want an *openai.Error, 429, code budget_exceeded, naming the budget and its reset", err)
	}
	ac := anthropic.NewClient(aoption.WithHTTPClient(hc), aoption.WithBaseURL(h.Up.URL), aoption.WithAPIKey("k"))
	_, err = ac.Messages.New(h.Ctx, messageParams())
	var aErr *anthropic.Error
	if !errors.As(err, &aErr) || aErr.StatusCode != 429 || aErr.Type() != "rate_limit_error" || !strings.Contains(aErr.RawJSON(), `"error_code":"budget_exceeded"`) {
		t.Fatalf("anthropic: err = %v; want an *anthropic.Error, 429 rate_limit_error, error_code budget_exceeded", err)
	}
	if n := cnt.n.Load(); n != 2 {
		t.Errorf("%d requests for 2 calls: the SDKs retried the refusal", n)
	}
	if n := h.Up.Calls.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	// Gemini's shape.
	resp, err := h.Post(h.Ctx, "/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":65000}}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), `"status":"RESOURCE_EXHAUSTED"`) || !strings.Contains(string(b), `"code":"budget_exceeded"`) {
		t.Errorf("gemini: %d %s", resp.StatusCode, b)
	}
	h.WantNoSpend(t)
}

// gate.Client is ready to hand to an SDK.
func TestClient(t *testing.T) {
	h := newHarness(t, "10", gate.Options{})
	c := gate.Client(h.M, h.Prices, gate.Options{Base: h.Up.Client().Transport})
	oc := openai.NewClient(option.WithHTTPClient(c), option.WithBaseURL(h.Up.URL+"/v1"), option.WithAPIKey("k"))
	if _, err := oc.Chat.Completions.New(h.Ctx, chatParams("gpt-4o")); err != nil {
		t.Fatal(err)
	}
	h.WantOneRecord(t, "openai", "gpt-4o", gatetest.CostGPT4o)
}
