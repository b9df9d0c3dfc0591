package main

// What operators see of the server besides its API: the logs' format, the
// Prometheus endpoint and the health probes.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/llmbudget/budget"
)

// newLogger returns the server's logger, writing to w as text or, with
// format "json", one JSON object a line. parseFlags has checked format.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// newMetrics returns an OpenTelemetry meter provider and the handler that
// serves what it measures in the Prometheus text format, through the
// OpenTelemetry Prometheus exporter. The exporter registers on a registry
// of its own, never client_golang's global one, so that the scrape holds
// the library's metrics only (and a host embedding this wiring keeps its
// default registry to itself). The service is named "budget-server" in
// target_info unless $OTEL_SERVICE_NAME or $OTEL_RESOURCE_ATTRIBUTES say
// otherwise. Shut the provider down after the last measurement.
func newMetrics(ctx context.Context, logger *slog.Logger) (*sdkmetric.MeterProvider, http.Handler, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "budget-server")),
		resource.WithFromEnv(), // after, so that the environment wins
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
		// A metric that fails to collect is logged; the others are
		// still served.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return mp, h, nil
}

// readyTimeout bounds the store check of one /readyz request, so that a
// probe never waits on a store that does not answer.
const readyTimeout = 2 * time.Second

// healthz answers 200 while the process serves requests: the liveness
// probe. It checks nothing else, so that a store outage never gets a
// healthy process restarted.
func healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProbe(w, http.StatusOK, probeBody{Status: "ok"})
	})
}

// readyz answers 200 when the store answers m.Ping, and 503 otherwise: the
// readiness probe. The store's migrations ran before the server started
// listening, so a store that answers is one ready to serve. The body says
// what failed but not how: the error, which may name hosts, goes to the
// log.
func readyz(m *budget.Manager, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := m.Ping(ctx); err != nil {
			logger.LogAttrs(r.Context(), slog.LevelWarn, "not ready: the store does not answer", slog.Any("err", err))
			writeProbe(w, http.StatusServiceUnavailable, probeBody{Status: "unavailable", Reason: "store unreachable"})
			return
		}
		writeProbe(w, http.StatusOK, probeBody{Status: "ok"})
	})
}

// probeBody is the JSON a probe answers.
type probeBody struct {
	Status string `json:"status"`           // "ok" or "unavailable"
	Reason string `json:"reason,omitempty"` // what is unavailable
}

func writeProbe(w http.ResponseWriter, code int, body probeBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}
