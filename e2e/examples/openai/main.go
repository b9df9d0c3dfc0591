// Command openai runs the official OpenAI Go SDK through a budget gate:
// every chat completion reserves its worst-case cost, is forwarded, and is
// settled at the cost its usage reports. It prints each call's cost and
// where the user's budget stands, until the budget refuses a call.
//
// It is in the e2e module (openai-go is no dependency of the library), so
// run it from the e2e directory:
//
//	cd e2e
//	go run ./examples/openai                      # against a built-in fake server
//	go run ./examples/openai -base-url https://api.openai.com/v1 -api-key "$OPENAI_API_KEY"
//	go run ./examples/openai -base-url http://localhost:11434/v1 -model llama3.2 -own-prices my-prices.json
//
// Without -base-url it starts a fake OpenAI-compatible server in the
// process, so it needs no key and no network. Any OpenAI-compatible server
// works with -base-url; the model must have a price: the built-in list
// (prices.json) covers a few OpenAI models; -prices loads a LiteLLM price
// list (model_prices_and_context_window.json) and -own-prices a list in
// the pricing package's own format.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/gate"
	"github.com/llmbudget/budget/pricing"
	"github.com/llmbudget/budget/store/memory"
)

//go:embed prices.json
var builtinPrices []byte

var prompts = []string{
	"Write a haiku about a budget.",
	"Name three things that cost money.",
	"Why reserve before you spend?",
	"One more haiku, please.",
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("openai", flag.ContinueOnError)
	fs.SetOutput(out)
	baseURL := fs.String("base-url", "", "an OpenAI-compatible API, e.g. https://api.openai.com/v1 (default: a built-in fake)")
	apiKey := fs.String("api-key", os.Getenv("OPENAI_API_KEY"), "API key (default $OPENAI_API_KEY)")
	model := fs.String("model", "gpt-4o-mini", "model to call")
	user := fs.String("user", "alice", "whose budget the calls spend")
	limit := fs.String("limit", "0.0002", "the user's monthly budget in dollars")
	calls := fs.Int("calls", 6, "number of calls to make")
	maxTokens := fs.Int64("max-tokens", 200, "max_tokens of each call: bounds its estimate")
	litellm := fs.String("prices", "", "a LiteLLM price list to load (model_prices_and_context_window.json)")
	own := fs.String("own-prices", "", "a price list in the pricing package's own format to load (overrides -prices)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	prices, err := loadPrices(*litellm, *own)
	if err != nil {
		return err
	}
	lim, err := budget.ParseAmount(*limit)
	if err != nil {
		return fmt.Errorf("-limit: %w", err)
	}

	url := *baseURL
	if url == "" {
		srv := newFakeServer()
		defer srv.Close()
		url = srv.URL + "/v1"
		fmt.Fprintf(out, "upstream: a built-in fake OpenAI server at %s (pass -base-url for a real one)\n", url)
	} else {
		fmt.Fprintf(out, "upstream: %s\n", url)
	}
	if *apiKey == "" {
		*apiKey = "sk-none"
	}

	// Budgets live in memory here; use store/sqlite to keep them.
	store := memory.New()
	defer store.Close()
	plan := budget.DefaultUserPlan()
	plan.Limit = lim
	m := budget.NewManager(store, budget.Options{UserPlan: &plan})

	// The gate is the HTTP client the SDK uses: nothing else in the
	// program knows about budgets, except WithUser on the context. Near
	// the end of the budget it lowers max_tokens to what is left rather
	// than refuse; listing models is free.
	hc := gate.Client(m, prices, gate.Options{
		FitToBudget: true,
		Free:        gate.CommonFreeRoutes,
		OnError:     func(r *http.Request, err error) { fmt.Fprintln(out, "  settle failed:", err) },
	})
	client := openai.NewClient(
		option.WithHTTPClient(hc),
		option.WithBaseURL(url),
		option.WithAPIKey(*apiKey),
		option.WithMaxRetries(0), // a refusal is final: do not retry it
	)
	ctx = gate.WithUser(ctx, *user)
	fmt.Fprintf(out, "%s: $%s a month, enforced; model %s, max_tokens %d\n", *user, lim, *model, *maxTokens)

	for i := 0; i < *calls; i++ {
		prompt := prompts[i%len(prompts)]
		stream := i%2 == 1
		mode := "plain"
		if stream {
			mode = "streaming"
		}
		fmt.Fprintf(out, "\ncall %d (%s): %q\n", i+1, mode, prompt)
		params := openai.ChatCompletionNewParams{
			Model:     *model,
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
			MaxTokens: openai.Int(*maxTokens),
		}
		reply, err := complete(ctx, &client, params, stream)
		switch {
		case errors.Is(err, budget.ErrBudgetExceeded):
			var le *budget.LimitError
			errors.As(err, &le)
			fmt.Fprintf(out, "  refused: not even a short answer fits; %s has spent $%s of $%s (and $%s is reserved)\n",
				le.UserID, le.Spent, le.Limit, le.Reserved)
			return nil
		case errors.Is(err, pricing.ErrUnknownModel):
			return fmt.Errorf("%w (load a price list with -prices or -own-prices)", err)
		case err != nil:
			return err
		}
		fmt.Fprintf(out, "  reply: %s\n", oneLine(reply))

		page, err := m.History(ctx, budget.UsageQuery{UserID: *user, Limit: 1})
		if err != nil {
			return err
		}
		if len(page.Records) == 1 {
			r := page.Records[0]
			fmt.Fprintf(out, "  cost:  $%s (%d input + %d output tokens of %s)\n", r.Cost, r.InputTokens, r.OutputTokens, r.Model)
		}
		st, err := m.Status(ctx, *user)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s: spent $%s of $%s (%s%%), remaining $%s, level %s\n", *user, st.Spent, st.Limit, st.Percent, st.Remaining, st.Level)
	}
	return nil
}

// complete makes one chat completion, plain or streaming, and returns the
// reply text.
func complete(ctx context.Context, client *openai.Client, params openai.ChatCompletionNewParams, stream bool) (string, error) {
	if !stream {
		resp, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			return "", err
		}
		if len(resp.Choices) == 0 {
			return "", nil
		}
		return resp.Choices[0].Message.Content, nil
	}
	s := client.Chat.Completions.NewStreaming(ctx, params)
	defer s.Close()
	var reply strings.Builder
	for s.Next() {
		if c := s.Current(); len(c.Choices) > 0 {
			reply.WriteString(c.Choices[0].Delta.Content)
		}
	}
	return reply.String(), s.Err()
}

func loadPrices(litellm, own string) (*pricing.Table, error) {
	var t pricing.Table
	if err := t.LoadLiteLLM(bytes.NewReader(builtinPrices)); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		load func(io.Reader) error
	}{{litellm, t.LoadLiteLLM}, {own, t.Load}} {
		if f.path == "" {
			continue
		}
		file, err := os.Open(f.path)
		if err != nil {
			return nil, err
		}
		err = f.load(file)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
	}
	return &t, nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
