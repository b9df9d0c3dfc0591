package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbudget/budget/pricing"
)

func TestRunAgainstBuiltinFake(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-calls", "40"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"upstream: a built-in fake OpenAI server",
		`call 1 (plain): "Write a haiku about a budget."`,
		// 16 input tokens × 1.5e-7 + 20 output × 6e-7, exactly.
		"cost:  $0.0000144 (16 input + 20 output tokens of gpt-4o-mini)",
		"alice: spent $0.0000144 of $0.0002 (7.2%), remaining $0.0001856, level green",
		`call 2 (streaming): "Name three things that cost money."`,
		"reply: Rent, groceries, and tokens.",
		"cost:  $0.00000675 (17 input + 7 output tokens of gpt-4o-mini)",
		"refused: not even a short answer fits",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// $0.0002 pays for about 14 answers; the last ones are cut short
	// to fit what is left, and the budget is never passed.
	if n := strings.Count(got, "cost:  $"); n < 12 {
		t.Errorf("%d calls charged, want the budget spent before the refusal:\n%s", n, got)
	}
	if strings.Contains(got, "level red") && !strings.Contains(got, "(100%)") {
		for _, line := range strings.Split(got, "\n") {
			if strings.Contains(line, "spent $") && strings.Contains(line, "remaining $-") {
				t.Errorf("the budget was passed: %s", line)
			}
		}
	}
}

func TestRunWithBaseURLAndOwnPrices(t *testing.T) {
	srv := newFakeServer()
	defer srv.Close()
	prices := filepath.Join(t.TempDir(), "prices.json")
	own := `{"models": {"my-model": {"input_per_million": "1", "output_per_million": "2", "max_output_tokens": 100}}}`
	if err := os.WriteFile(prices, []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"-base-url", srv.URL + "/v1", "-model", "my-model", "-own-prices", prices, "-calls", "1", "-limit", "1"}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	// 16 input tokens × $1/M + 20 output × $2/M.
	if !strings.Contains(out.String(), "cost:  $0.000056 (16 input + 20 output tokens of my-model)") {
		t.Errorf("output:\n%s", out.String())
	}

	out.Reset()
	err = run(context.Background(), []string{"-base-url", srv.URL + "/v1", "-model", "unpriced"}, &out)
	if !errors.Is(err, pricing.ErrUnknownModel) {
		t.Errorf("unpriced model: %v, want ErrUnknownModel", err)
	}
}
