package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// newTracerProvider returns a tracer provider that batches spans to the
// OTLP/HTTP collector at endpoint (a base URL: /v1/traces is appended
// unless it is already there). The SDK reads the standard OTEL_* variables
// (sampler, batch processor, span limits, exporter headers and timeout,
// resource attributes); service.name is "prism" unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES says otherwise. Export errors are logged at warn.
func newTracerProvider(ctx context.Context, endpoint, version string, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--otlp-endpoint %q: want the http(s) URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = path.Join("/", u.Path, "v1/traces")
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err) }))
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("prism"), semconv.ServiceVersion(cmp.Or(version, "dev"))),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: the environment overrides
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	log.Info("exporting traces", "otlp_endpoint", u.String())
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
