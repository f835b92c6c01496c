// Package tracing sets up OpenTelemetry tracing of probes from sonde's
// --tracing.* flags and the standard OTEL_* environment variables.
// Tracing is off unless an OTLP endpoint is named by either.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Protocols sonde can export spans with, as OTEL_EXPORTER_OTLP_PROTOCOL
// names them.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Options are the --tracing.* flags; empty fields defer to the OTEL_*
// environment variables, then to the OpenTelemetry defaults.
type Options struct {
	Endpoint      string  // --tracing.endpoint, a URL
	Protocol      string  // --tracing.protocol
	SamplingRatio float64 // --tracing.sampling-ratio; negative when not given
	Version       string  // sonde's version, for service.version
}

// Setup is what tracing needs at run time.
type Setup struct {
	Tracer   trace.Tracer // nil when tracing is off
	Endpoint string       // where spans go, for the start-up log line
	Protocol string
	Shutdown func(context.Context) error // flushes spans not yet sent
}

// New sets tracing up. Tracing is off, and Setup.Tracer nil, when neither the flags nor
// the environment name an endpoint, or OTEL_SDK_DISABLED is true, or
// OTEL_TRACES_EXPORTER is none.
func New(ctx context.Context, o Options) (*Setup, error) {
	off := &Setup{Shutdown: func(context.Context) error { return nil }}
	if !enabled(o) {
		return off, nil
	}
	if e := os.Getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: sonde exports traces with otlp only (or none, to turn tracing off)", e)
	}
	protocol, err := chooseProtocol(o.Protocol)
	if err != nil {
		return nil, err
	}
	exp, err := newExporter(ctx, protocol, o.Endpoint)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx, o.Version)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if o.SamplingRatio >= 0 {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SamplingRatio))))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Setup{
		Tracer:   tp.Tracer("github.com/sonde-exporter/sonde", trace.WithInstrumentationVersion(o.Version)),
		Endpoint: describeEndpoint(o.Endpoint),
		Protocol: protocol,
		Shutdown: tp.Shutdown,
	}, nil
}

func enabled(o Options) bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return o.Endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// chooseProtocol: the flag, else the environment, else http/protobuf,
// the OpenTelemetry default.
func chooseProtocol(flag string) (string, error) {
	p := flag
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p == "" {
			p = os.Getenv(name)
		}
	}
	switch p {
	case "":
		return ProtocolHTTP, nil
	case ProtocolGRPC, ProtocolHTTP:
		return p, nil
	}
	return "", fmt.Errorf("OTLP protocol %q is not supported; use %s or %s", p, ProtocolGRPC, ProtocolHTTP)
}

// newExporter makes the OTLP exporter. It reads the OTEL_EXPORTER_OTLP_*
// variables itself (headers, certificates, timeout, compression); a
// --tracing.endpoint URL takes precedence over their endpoint.
func newExporter(ctx context.Context, protocol, endpoint string) (sdktrace.SpanExporter, error) {
	if endpoint != "" {
		if err := checkEndpoint(endpoint); err != nil {
			return nil, err
		}
	}
	var exp sdktrace.SpanExporter
	var err error
	if protocol == ProtocolGRPC {
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		if endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(withTracesPath(endpoint)))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("starting the OTLP %s exporter: %w", protocol, err)
	}
	return exp, nil
}

// withTracesPath reads a URL without a path as OTEL_EXPORTER_OTLP_ENDPOINT
// is read, as the collector's base URL, and adds the path of the traces
// service; a URL with a path is taken as it is.
func withTracesPath(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// checkEndpoint refuses what the exporters would misread: the scheme
// decides whether TLS is used, so it must be there.
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return errors.New("--tracing.endpoint " + strconv.Quote(endpoint) +
		" is not a URL like http://collector:4318 (http/protobuf) or https://collector:4317 (grpc); " +
		"http:// sends spans in the clear, https:// over TLS")
}

func describeEndpoint(flag string) string {
	for _, e := range []string{flag, os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")} {
		if e != "" {
			return e
		}
	}
	return ""
}

// newResource names the service "sonde" unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
func newResource(ctx context.Context, version string) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", "sonde"), attribute.String("service.version", version)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	return res, nil
}
