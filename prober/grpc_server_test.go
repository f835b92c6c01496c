package prober

import (
	"context"
	"crypto/tls"
	"net"
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

	"github.com/sonde-exporter/sonde/prober/internal/probertest"
)

// grpcServerOpts shape a test gRPC server.
type grpcServerOpts struct {
	tls      bool                 // serve TLS with a certificate issued by ca from spec
	ca       *probertest.TestCA   // the issuing CA; a new one when nil
	spec     *probertest.LeafSpec // the certificate to issue; localhostSpec() when nil
	network  string               // "tcp4" (default) or "tcp6"
	noHealth bool                 // register no health service: calls are UNIMPLEMENTED
	// health replaces the standard health service, for servers that
	// answer an error or never answer.
	health healthpb.HealthServer
	// maxHeaderList is the header list the server takes, which it
	// announces as SETTINGS_MAX_HEADER_LIST_SIZE; grpc-go's default when 0.
	maxHeaderList uint32
}

// grpcTestServer is an in-process gRPC server on loopback.
type grpcTestServer struct {
	addr   string
	ca     *probertest.TestCA // with tls: the CA that issued the server's certificate
	health *health.Server     // the standard health service, whose statuses tests set
	calls  chan grpcCall      // what the server saw of each call to the health service
}

// grpcCall is what the server saw of one call.
type grpcCall struct {
	authority string
	md        metadata.MD
	peer      net.Addr
	sni       string // the TLS server name the client sent; empty without TLS
	// deadline is the time the call had left when the server got it (from
	// grpc-timeout); 0 without one.
	deadline time.Duration
}

// newGRPCServer starts a gRPC server, stopped when the test ends. The
// standard health service starts with the whole server SERVING.
func newGRPCServer(t *testing.T, o grpcServerOpts) *grpcTestServer {
	t.Helper()
	s := &grpcTestServer{calls: make(chan grpcCall, 16)}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(s.record)}
	if o.tls {
		s.ca = o.ca
		if s.ca == nil {
			s.ca = probertest.NewTestCA(t, "sonde grpc test CA")
		}
		spec := probertest.LocalhostSpec()
		if o.spec != nil {
			spec = *o.spec
		}
		cert := s.ca.Issue(t, spec)
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS}})))
	}
	if o.maxHeaderList != 0 {
		opts = append(opts, grpc.MaxHeaderListSize(o.maxHeaderList))
	}
	srv := grpc.NewServer(opts...)
	switch {
	case o.health != nil:
		healthpb.RegisterHealthServer(srv, o.health)
	case !o.noHealth:
		s.health = health.NewServer()
		healthpb.RegisterHealthServer(srv, s.health)
	}
	ln := listenLoopback(t, o.network)
	s.addr = ln.Addr().String()
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
func (s *grpcTestServer) record(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var call grpcCall
	call.md, _ = metadata.FromIncomingContext(ctx)
	if a := call.md.Get(":authority"); len(a) > 0 {
		call.authority = a[0]
	}
	if d, ok := ctx.Deadline(); ok {
		call.deadline = time.Until(d)
	}
	if p, ok := grpcpeer.FromContext(ctx); ok {
		call.peer = p.Addr
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			call.sni = info.State.ServerName
		}
	}
	select {
	case s.calls <- call:
	default: // nobody looks at calls beyond the buffer
	}
	return handler(ctx, req)
}

// lastCall returns what the server saw of the call the probe made.
func (s *grpcTestServer) lastCall(t *testing.T) grpcCall {
	t.Helper()
	select {
	case c := <-s.calls:
		return c
	default:
		t.Fatal("the server saw no health check call")
		return grpcCall{}
	}
}

// answeringHealth is a health service that answers every check with err.
type answeringHealth struct {
	healthpb.UnimplementedHealthServer
	err error
}

func (h answeringHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return nil, h.err
}

// fixedHealth is a health service that answers every check with status,
// even one the standard service never answers a check with.
type fixedHealth struct {
	healthpb.UnimplementedHealthServer
	status healthpb.HealthCheckResponse_ServingStatus
}

func (h fixedHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{Status: h.status}, nil
}

// stalledHealth is a health service that never answers: it holds every
// check until the client gives up.
type stalledHealth struct {
	healthpb.UnimplementedHealthServer
}

func (stalledHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// grpcError is an answer of an answeringHealth.
func grpcError(c codes.Code, msg string) error { return status.Error(c, msg) }
