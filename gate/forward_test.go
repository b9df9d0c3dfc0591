package gate_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/llmbudget/budget/gate"
)

// captured records the request the gate sends upstream, as the base
// transport sees it, and answers with a canned stream.
type captured struct {
	canned
	req    *http.Request
	header http.Header // a copy, taken when the request arrived
	body   []byte
}

func (c *captured) RoundTrip(r *http.Request) (*http.Response, error) {
	c.req, c.header = r, r.Header.Clone()
	c.body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {c.contentType}}, ContentLength: int64(len(c.body)),
		Body: io.NopCloser(bytes.NewReader(c.canned.body)), Request: r,
	}, nil
}

// TestForwardLeavesRequestAlone: the gate sends upstream its own request
// (a rewritten body with its own length) and never changes the caller's:
// a stale Content-Length header is dropped from the request sent, not from
// the caller's, and every other header and the context's values go through.
func TestForwardLeavesRequestAlone(t *testing.T) {
	var stream benchCase
	for _, c := range benchCases() {
		if c.name == "stream/1KB" {
			stream = c
		}
	}
	up := &captured{canned: stream.upstream}
	rt := gateFor(t, up)
	type key struct{}
	for _, withLength := range []bool{true, false} {
		ctx := context.WithValue(gate.WithUser(context.Background(), "alice"), key{}, "kept")
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream.test/v1/chat/completions", strings.NewReader(stream.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Trace", "abc")
		if withLength {
			req.Header.Set("Content-Length", "5") // stale: the gate adds stream_options
		}
		before := req.Header.Clone()
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()

		if !strings.Contains(string(up.body), `"include_usage":true`) || len(up.body) == len(stream.body) {
			t.Fatalf("upstream got %.80s…: the gate did not add include_usage", up.body)
		}
		if up.req.ContentLength != int64(len(up.body)) {
			t.Errorf("sent ContentLength %d for a body of %d bytes", up.req.ContentLength, len(up.body))
		}
		if _, ok := up.header["Content-Length"]; ok {
			t.Errorf("a Content-Length header went upstream: %v", up.header)
		}
		if up.header.Get("X-Trace") != "abc" || up.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers sent upstream: %v", up.header)
		}
		if got := up.req.Context().Value(key{}); got != "kept" {
			t.Errorf("the context sent upstream lost the caller's value: %v", got)
		}
		if up.req == req {
			t.Error("the caller's request itself went upstream")
		}
		for k, v := range before {
			if got := req.Header[k]; !slices.Equal(got, v) {
				t.Errorf("the caller's header %s changed: %v, was %v", k, got, v)
			}
		}
		if len(req.Header) != len(before) {
			t.Errorf("the caller's header changed: %v, was %v", req.Header, before)
		}
	}
}
