package probertest

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// GRPCServerOpts shape a test gRPC server.
type GRPCServerOpts struct {
	TLS      bool           // serve TLS with a certificate issued by ca from spec
	CA       *testcert.CA   // the issuing CA; a new one when nil
	Spec     *testcert.Spec // the certificate to issue; testcert.Loopback() when nil
	Network  string         // "tcp4" (default) or "tcp6"
	NoHealth bool           // register no health service: calls are UNIMPLEMENTED
	// Health replaces the standard health service, for servers that
	// answer an error or never answer.
	Health healthpb.HealthServer
	// MaxHeaderList is the header list the server takes, which it
	// announces as SETTINGS_MAX_HEADER_LIST_SIZE; grpc-go's default when 0.
	MaxHeaderList uint32
}

// GRPCTestServer is an in-process gRPC server on loopback.
type GRPCTestServer struct {
	Addr   string
	CA     *testcert.CA   // with tls: the CA that issued the server's certificate
	Health *health.Server // the standard health service, whose statuses tests set
	Calls  chan grpcCall  // what the server saw of each call to the health service
}

// grpcCall is what the server saw of one call.
type grpcCall struct {
	Authority string
	Md        metadata.MD
	Peer      net.Addr
	Sni       string // the TLS server name the client sent; empty without TLS
	// Deadline is the time the call had left when the server got it (from
	// grpc-timeout); 0 without one.
	Deadline time.Duration
}

// NewGRPCServer starts a gRPC server, stopped when the test ends. The
// standard health service starts with the whole server SERVING.
func NewGRPCServer(t *testing.T, o GRPCServerOpts) *GRPCTestServer {
	t.Helper()
	s := &GRPCTestServer{Calls: make(chan grpcCall, 16)}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(s.record)}
	if o.TLS {
		s.CA = o.CA
		if s.CA == nil {
			s.CA = testcert.NewCA(t, testcert.Spec{})
		}
		spec := testcert.Loopback()
		if o.Spec != nil {
			spec = *o.Spec
		}
		cert := s.CA.Issue(t, spec)
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS()}})))
	}
	if o.MaxHeaderList != 0 {
		opts = append(opts, grpc.MaxHeaderListSize(o.MaxHeaderList))
	}
	srv := grpc.NewServer(opts...)
	switch {
	case o.Health != nil:
		healthpb.RegisterHealthServer(srv, o.Health)
	case !o.NoHealth:
		s.Health = health.NewServer()
		healthpb.RegisterHealthServer(srv, s.Health)
	}
	ln := listenLoopback(t, o.Network)
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return s
}

// listenLoopback listens on 127.0.0.1, or on [::1] for "tcp6", skipping
// the test when the host has no IPv6 loopback.
func listenLoopback(t *testing.T, network string) net.Listener {
	t.Helper()
	if network == "tcp6" {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skipf("cannot listen on [::1]: %v", err)
		}
		return ln
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// record notes what the server saw of a call, then serves it.
func (s *GRPCTestServer) record(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var call grpcCall
	call.Md, _ = metadata.FromIncomingContext(ctx)
	if a := call.Md.Get(":authority"); len(a) > 0 {
		call.Authority = a[0]
	}
	if d, ok := ctx.Deadline(); ok {
		call.Deadline = time.Until(d)
	}
	if p, ok := grpcpeer.FromContext(ctx); ok {
		call.Peer = p.Addr
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			call.Sni = info.State.ServerName
		}
	}
	select {
	case s.Calls <- call:
	default: // nobody looks at calls beyond the buffer
	}
	return handler(ctx, req)
}

// LastCall returns what the server saw of the call the probe made.
func (s *GRPCTestServer) LastCall(t *testing.T) grpcCall {
	t.Helper()
	select {
	case c := <-s.Calls:
		return c
	default:
		t.Fatal("the server saw no health check call")
		return grpcCall{}
	}
}

// AnsweringHealth is a health service that answers every check with err.
type AnsweringHealth struct {
	healthpb.UnimplementedHealthServer
	Err error
}

func (h AnsweringHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return nil, h.Err
}

// FixedHealth is a health service that answers every check with status,
// even one the standard service never answers a check with.
type FixedHealth struct {
	healthpb.UnimplementedHealthServer
	Status healthpb.HealthCheckResponse_ServingStatus
}

func (h FixedHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{Status: h.Status}, nil
}

// StalledHealth is a health service that never answers: it holds every
// check until the client gives up.
type StalledHealth struct {
	healthpb.UnimplementedHealthServer
}

func (StalledHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// GRPCError is an answer of an answeringHealth.
func GRPCError(c codes.Code, msg string) error { return status.Error(c, msg) }

// GRPCTLSSection is a grpc section for TLS trusting ca, plus extra lines.
func GRPCTLSSection(t *testing.T, ca *testcert.CA, extra ...string) string {
	t.Helper()
	return strings.Join(append([]string{"tls: true", "tls_config:", "  ca_file: " + ca.File(t)}, extra...), "\n")
}
