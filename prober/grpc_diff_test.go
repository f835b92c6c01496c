package prober

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// sonde's grpc prober replaces grpc-go's client (grpc_h2.go), and these
// helpers keep it honest: a test runs grpc-go's own health client, as
// blackbox_exporter runs it, against the same peer as the probe and
// compares what the two report.

// grpcGoCall is a health check as grpc-go's client makes it.
type grpcGoCall struct {
	service  string
	metadata map[string]string
	timeout  time.Duration // 5 s when 0
}

// check makes the call to a plaintext server at addr and returns the
// status it ended with (OK when the health service answered).
func (c grpcGoCall) check(t *testing.T, addr string) *status.Status {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	defer cc.Close()
	timeout := c.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, metadata.New(c.metadata))
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: c.service})
	return status.Convert(err)
}

// sameCode asserts that the probe's probe_grpc_status_code is the code
// grpc-go's client ended with.
func sameCode(t *testing.T, sink *Sink, grpcGo *status.Status) {
	t.Helper()
	got := value(t, sink, "probe_grpc_status_code")
	if codes.Code(got) != grpcGo.Code() {
		t.Errorf("probe_grpc_status_code = %v (%v), grpc-go's client ended with %v (%q)",
			got, codes.Code(got), grpcGo.Code(), grpcGo.Message())
	}
}
