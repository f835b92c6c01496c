package compat

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Services the gRPC peers know; any other name is NOT_FOUND.
const (
	grpcServing       = "compat.Serving"
	grpcNotServing    = "compat.Down"
	grpcUnknown       = "compat.Unknown"
	grpcGuarded       = "compat.Guarded" // SERVING, but only to calls with x-compat-key: letmein
	grpcStatusUnknown = "compat.Unsure"  // serving status UNKNOWN
)

// grpcPeers are the gRPC servers of the test.
type grpcPeers struct {
	plain    string // host:port, no TLS
	plainV6  string // the same on [::1], empty without IPv6 loopback
	tls      string // TLS, the good certificate
	expired  string // TLS, an expired certificate
	noHealth string // a gRPC server without the health service
	named    string // TLS, a certificate for sonde.test only
}

func startGRPCPeers(t *testing.T, p *pki) *grpcPeers {
	t.Helper()
	gp := &grpcPeers{
		plain:    serveGRPC(t, "127.0.0.1:0", nil, true),
		tls:      serveGRPC(t, "127.0.0.1:0", p.serverTLS(p.good, false), true),
		expired:  serveGRPC(t, "127.0.0.1:0", p.serverTLS(p.expired, false), true),
		noHealth: serveGRPC(t, "127.0.0.1:0", nil, false),
		named:    serveGRPC(t, "127.0.0.1:0", p.serverTLS(p.named, false), true),
	}
	if ipv6Loopback() {
		gp.plainV6 = serveGRPC(t, "[::1]:0", nil, true)
	}
	return gp
}

// serveGRPC starts a gRPC server on addr, over TLS with tlsCfg, with the
// standard health service when withHealth.
func serveGRPC(t *testing.T, addr string, tlsCfg *tls.Config, withHealth bool) string {
	t.Helper()
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(guard)}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	srv := grpc.NewServer(opts...)
	if withHealth {
		hs := health.NewServer()
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus(grpcServing, healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus(grpcNotServing, healthpb.HealthCheckResponse_NOT_SERVING)
		hs.SetServingStatus(grpcGuarded, healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus(grpcStatusUnknown, healthpb.HealthCheckResponse_UNKNOWN)
		healthpb.RegisterHealthServer(srv, hs)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s for gRPC: %v", addr, err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// guard refuses health checks of grpcGuarded that lack the key in their
// metadata, so that a scenario shows the probe sent the module's metadata.
func guard(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if hc, ok := req.(*healthpb.HealthCheckRequest); ok && hc.GetService() == grpcGuarded {
		md, _ := metadata.FromIncomingContext(ctx)
		if keys := md.Get("x-compat-key"); len(keys) != 1 || keys[0] != "letmein" {
			return nil, status.Error(codes.PermissionDenied, "no key")
		}
	}
	return handler(ctx, req)
}
