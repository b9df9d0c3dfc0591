package gate_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The honest upstream, the hand-moved clock and timers and the rig around
// them are in internal/gatetest (gatetest.NewRig), shared with the e2e
// module's tests that drive the real SDKs. This file holds the client the
// gate's own tests read streams with.

// goOpenAIStream reads a chat stream the way github.com/sashabaranov/go-openai
// does: line by line through a bufio.Reader, returning io.EOF at
// "data: [DONE]" without reading on, and never closing the body; its
// callers index Choices[0].
type goOpenAIStream struct {
	r *bufio.Reader
}

type goChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
}

func (s *goOpenAIStream) Recv() (goChunk, error) {
	for {
		line, err := s.r.ReadBytes('\n')
		if err != nil {
			return goChunk{}, err
		}
		line = bytes.TrimSpace(line)
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		line = bytes.TrimSpace(line[len("data:"):])
		if string(line) == "[DONE]" {
			return goChunk{}, io.EOF
		}
		var c goChunk
		if err := json.Unmarshal(line, &c); err != nil {
			return goChunk{}, err
		}
		return c, nil
	}
}

func openGoStream(t *testing.T, client *http.Client, ctx context.Context, url, body string) *goOpenAIStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return &goOpenAIStream{r: bufio.NewReader(resp.Body)}
}
