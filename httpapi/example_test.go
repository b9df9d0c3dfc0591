package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/llmbudget/budget"
	"github.com/llmbudget/budget/httpapi"
	"github.com/llmbudget/budget/store/memory"
)

// ExampleNew mounts the API under /api/v1/budget/ with a bearer-token
// authenticator, records some spend, and reads the user's status.
func ExampleNew() {
	ctx := context.Background()
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	m := budget.NewManager(memory.New(), budget.Options{Now: func() time.Time { return now }})

	// Your authentication: here, a fixed map of bearer tokens.
	tokens := map[string]budget.Principal{
		"secret-alice": {UserID: "alice"},
		"secret-admin": {UserID: "ops", Admin: true},
	}
	auth := func(r *http.Request) (budget.Principal, error) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if p, ok := tokens[tok]; ok {
			return p, nil
		}
		return budget.Principal{}, errors.New("missing or unknown token")
	}
	h, err := httpapi.New(m, httpapi.Options{Authenticate: auth})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/budget/", http.StripPrefix("/api/v1/budget", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	_, err = m.Record(ctx, "alice", budget.Usage{Provider: "openai", Model: "gpt-4o", Cost: budget.MustAmount("12.5")})
	if err != nil {
		panic(err)
	}

	r, _ := http.NewRequest("GET", srv.URL+"/api/v1/budget/status", nil)
	r.Header.Set("Authorization", "Bearer secret-alice")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out bytes.Buffer
	json.Indent(&out, body, "", "  ")
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	fmt.Print(out.String())
	// Output:
	// 200 OK application/json; charset=utf-8
	// {
	//   "user_id": "alice",
	//   "limit_usd": "30",
	//   "spent_usd": "12.5",
	//   "reserved_usd": "0",
	//   "remaining_usd": "17.5",
	//   "percent_used": "41.66",
	//   "alert_level": "green",
	//   "enforce_budget": true,
	//   "budget_period": "monthly",
	//   "timezone": "UTC",
	//   "current_period_start": "2025-03-01T00:00:00Z",
	//   "current_period_end": "2025-04-01T00:00:00Z",
	//   "budgets": [
	//     {
	//       "scope": "user",
	//       "id": "alice",
	//       "limit_usd": "30",
	//       "spent_usd": "12.5",
	//       "reserved_usd": "0",
	//       "remaining_usd": "17.5",
	//       "percent_used": "41.66",
	//       "alert_level": "green",
	//       "enforce_budget": true,
	//       "budget_period": "monthly",
	//       "current_period_start": "2025-03-01T00:00:00Z",
	//       "current_period_end": "2025-04-01T00:00:00Z",
	//       "binding": true
	//     }
	//   ],
	//   "forecast": {
	//     "method": "recent_pace",
	//     "pace_days": 7,
	//     "pace_from": "2025-03-14T09:00:00Z",
	//     "pace_to": "2025-03-14T09:00:00Z",
	//     "pace_spent_usd": "12.5",
	//     "spend_per_day_usd": "12.5",
	//     "projected_spent_usd": "232.8125",
	//     "limit_reached_at": "2025-03-15T18:36:00Z",
	//     "projected_over_limit": true
	//   }
	// }
}
