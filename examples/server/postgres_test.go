package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestServerPostgres runs two replicas of the server on one PostgreSQL
// schema: what one records and changes, the other serves.
func TestServerPostgres(t *testing.T) {
	dsn := os.Getenv("BUDGET_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set BUDGET_TEST_POSTGRES_DSN (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the server on PostgreSQL; .ci/run does")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("server_test_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Error(err)
		}
	})
	tokens := writeTokens(t, t.TempDir())
	a := startServer(t, "-postgres", dsn, "-postgres-schema", schema, "-demo", "-tokens", tokens)
	b := startServer(t, "-postgres", dsn, "-postgres-schema", schema, "-tokens", tokens)
	if !strings.Contains(a.out.String(), "postgres") {
		t.Errorf("replica a does not say it serves PostgreSQL:\n%s", a.out.String())
	}

	status := func(s *server, user string) map[string]any {
		t.Helper()
		url, token := s.base+"/api/v1/budget/status", userToken
		if user != "alice" {
			url, token = s.base+"/api/v1/budget/admin/users/"+user, adminToken
		}
		resp, body := get(t, url, token)
		var st map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil {
			t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
		}
		return st
	}
	// The demo traffic recorded through a is served by b.
	sa, sb := status(a, "alice"), status(b, "alice")
	if sa["spent_usd"] == "0" || sa["spent_usd"] != sb["spent_usd"] {
		t.Errorf("alice's spend: %v through a, %v through b; want the same, not 0", sa["spent_usd"], sb["spent_usd"])
	}
	if st := status(a, "dave"); st["alert_level"] != "red" {
		t.Fatalf("dave after the demo: %v, want red", st["alert_level"])
	}
	// An admin resets dave through b; a sees it.
	req, err := http.NewRequest(http.MethodPost, b.base+"/api/v1/budget/admin/reset/dave", strings.NewReader(`{"reason":"replica test"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /admin/reset/dave through b: %s", resp.Status)
	}
	if st := status(a, "dave"); st["spent_usd"] != "0" || st["alert_level"] != "green" {
		t.Errorf("dave through a after the reset through b: spent %v, level %v; want 0 and green", st["spent_usd"], st["alert_level"])
	}
	for _, s := range []*server{a, b} {
		if err := s.stop(t); err != nil {
			t.Fatalf("run: %v\noutput:\n%s", err, s.out.String())
		}
	}
}
