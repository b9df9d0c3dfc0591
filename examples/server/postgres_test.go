package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestServerPostgres runs two replicas of the server on one PostgreSQL
// schema: what one records and changes, the other serves.
// postgresDSN returns $BUDGET_TEST_POSTGRES_DSN, or skips the test.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("BUDGET_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set BUDGET_TEST_POSTGRES_DSN (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the server on PostgreSQL; .ci/run does")
	}
	return dsn
}

// testSchema returns the name of a schema of the test's own, which the
// test's cleanup drops.
func testSchema(t *testing.T, dsn string) string {
	t.Helper()
	schema := fmt.Sprintf("server_test_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
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
	return schema
}

func TestServerPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	schema := testSchema(t, dsn)
	tokens := writeTokens(t, t.TempDir())
	a := startServer(t, "-postgres", dsn, "-postgres-schema", schema, "-demo", "-tokens", tokens, "-metrics")
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
	// a's store reports its group commits.
	if resp, body := get(t, a.base+"/metrics", ""); !regexp.MustCompile(`(?m)^budget_store_batch_size_count\{[^}]*store="postgres"[^}]*\} [1-9]`).Match(body) {
		t.Errorf("GET /metrics on a: %s: no PostgreSQL batch sizes:\n%s", resp.Status, body)
	}
	for _, s := range []*server{a, b} {
		if err := s.stop(t); err != nil {
			t.Fatalf("run: %v\noutput:\n%s", err, s.out.String())
		}
	}
}

// TestServerPostgresReadyz cuts the server off from PostgreSQL, through a
// proxy between them, and restores it: /readyz answers 503 while the
// store is unreachable, /healthz 200 throughout, and both /readyz and the
// API work again after. The PostgreSQL server itself keeps running for the
// other tests.
func TestServerPostgresReadyz(t *testing.T) {
	dsn := postgresDSN(t)
	schema := testSchema(t, dsn)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	srv := startServer(t, "-postgres", proxiedDSN(t, dsn, proxy.addr()), "-postgres-schema", schema,
		"-tokens", writeTokens(t, t.TempDir()))

	// waitReady polls /readyz until it answers want; the pool notices a
	// cut or a restored connection on its next use, but give it time.
	waitReady := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, body := get(t, srv.base+"/readyz", "")
			if resp.StatusCode == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /readyz: %s: %s; want %d\noutput:\n%s", resp.Status, body, want, srv.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReady(http.StatusOK)

	proxy.cut()
	waitReady(http.StatusServiceUnavailable)
	resp, body := get(t, srv.base+"/readyz", "")
	var b probeBody
	if err := json.Unmarshal(body, &b); err != nil || b.Status != "unavailable" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /readyz while cut: %s %q: %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(string(body), proxy.addr()) {
		t.Errorf("GET /readyz names the store's address: %s", body)
	}
	if resp, body := get(t, srv.base+"/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz while the store is cut off: %s: %s", resp.Status, body)
	}
	if !strings.Contains(srv.out.String(), "not ready: the store does not answer") {
		t.Errorf("no log line says why /readyz failed:\n%s", srv.out.String())
	}

	proxy.restore()
	waitReady(http.StatusOK)
	if resp, body := get(t, srv.base+"/api/v1/budget/status", userToken); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /status after the store is back: %s: %s", resp.Status, body)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, srv.out.String())
	}
}

// proxiedDSN returns dsn with its host and port replaced by addr's.
func proxiedDSN(t *testing.T, dsn, addr string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = addr
		return u.String()
	}
	// keyword=value: a later keyword overrides an earlier one.
	host, port, _ := net.SplitHostPort(addr)
	return dsn + " host=" + host + " port=" + port
}

// tcpProxy forwards TCP connections to a target. Cut, it closes the
// connections it forwards and hangs up on new ones at once, as a server
// that went away would; restored, it forwards again.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and the forwarding goroutines

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool // both ends of every forwarded connection
}

// startProxy starts a proxy to target on a loopback port; the test's
// cleanup stops it.
func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward copies between c and a new connection to the target until
// either side closes or the proxy is cut.
func (p *tcpProxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
}

// track records c for cut, or reports false if the proxy is cut.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cut closes every forwarded connection and refuses new ones until
// restore.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
