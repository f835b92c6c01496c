package grpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// sonde's grpc prober replaces grpc-go's client (grpc_h2.go), and these
// helpers keep it honest: a test runs grpc-go's own health client, as
// blackbox_exporter runs it, against the same peer as the probe and
// compares what the two report.

// grpcGoCall is a health check as grpc-go's client makes it.
type grpcGoCall struct {
	service  string
	metadata map[string]string
	ca       *testcert.CA  // with TLS, the CA the server's certificate is from
	timeout  time.Duration // 5 s when 0
}

// check makes the call to the server at addr and returns the status it
// ended with (OK when the health service answered).
func (c grpcGoCall) check(t *testing.T, addr string) *status.Status {
	t.Helper()
	creds := insecure.NewCredentials()
	if c.ca != nil {
		creds = credentials.NewTLS(&tls.Config{RootCAs: c.ca.Pool()})
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
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
func sameCode(t *testing.T, sink *probemetrics.Sink, grpcGo *status.Status) {
	t.Helper()
	got := probertest.Value(t, sink, "probe_grpc_status_code")
	if codes.Code(got) != grpcGo.Code() {
		t.Errorf("probe_grpc_status_code = %v (%v), grpc-go's client ended with %v (%q)",
			got, codes.Code(got), grpcGo.Code(), grpcGo.Message())
	}
}

// grpcMetadataSection is a grpc module section sending md as metadata.
func grpcMetadataSection(md map[string]string) string {
	s := "metadata:"
	for k, v := range md {
		s += fmt.Sprintf("\n  %s: [%q]", k, v)
	}
	return s
}

// TestGRPCHeaderListLimit sends metadata over and under the header list
// a grpc-go server takes: over it, the call is not sent and fails with
// INTERNAL, as grpc-go's client fails it.
func TestGRPCHeaderListLimit(t *testing.T) {
	const limit = 1024
	srv := probertest.NewGRPCServer(t, probertest.GRPCServerOpts{MaxHeaderList: limit})
	cases := []struct {
		name     string
		metadata map[string]string
		want     failure
		code     codes.Code
	}{
		{"under the limit", map[string]string{"x-tenant": strings.Repeat("t", 100)}, failure{}, codes.OK},
		{"over the limit", map[string]string{"x-tenant": strings.Repeat("t", 2*limit)},
			failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}, codes.Internal},
		{"over the limit in many fields", map[string]string{"x-a": strings.Repeat("a", 400), "x-b": strings.Repeat("b", 400)},
			failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck}, codes.Internal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink, err := probertest.Run(t, grpcModule(t, grpcMetadataSection(tc.metadata)), srv.Addr)
			perr := checkOutcome(t, err, tc.want)
			probertest.Metric(t, sink, float64(tc.code), "probe_grpc_status_code")
			if perr != nil {
				if !strings.Contains(perr.Error(), fmt.Sprintf("more than the %d bytes the server takes", limit)) {
					t.Errorf("the error does not name the server's limit: %v", perr)
				}
				select {
				case call := <-srv.Calls:
					t.Errorf("the server saw the call, with metadata %v", call.Md)
				default:
				}
			} else {
				srv.LastCall(t)
			}
			sameCode(t, sink, grpcGoCall{metadata: tc.metadata}.check(t, srv.Addr))
			for len(srv.Calls) > 0 {
				<-srv.Calls // grpc-go's
			}
		})
	}
}

// TestGRPCHeaderListNotSent checks on the wire that a header list over
// the server's limit never leaves sonde, nor grpc-go.
func TestGRPCHeaderListNotSent(t *testing.T) {
	o := h2CallsOpts{settings: []http2.Setting{{ID: http2.SettingMaxHeaderListSize, Val: 1024}}}
	md := map[string]string{"x-tenant": strings.Repeat("t", 2048)}
	peer, addr := newH2Calls(t, serves, o)
	sink, err := probertest.Run(t, grpcModule(t, grpcMetadataSection(md)), addr)
	checkOutcome(t, err, failure{taxonomy.ClassStatus, taxonomy.ReasonGRPCStatus, taxonomy.PhaseCheck})
	grpcGoPeer, grpcGoAddr := newH2Calls(t, serves, o)
	sameCode(t, sink, grpcGoCall{metadata: md}.check(t, grpcGoAddr))
	for client, p := range map[string]*h2Calls{"sonde": peer, "grpc-go": grpcGoPeer} {
		for _, tr := range p.traces(t) {
			if tr.headers != 0 {
				t.Errorf("%s sent %d HEADERS frames on connection %d, want none", client, tr.headers, tr.conn)
			}
		}
	}
}

// TestGRPCHeaderListBoundary checks the size counted against the limit:
// each field's name and value, and 32 bytes, as HTTP/2 counts them.
func TestGRPCHeaderListBoundary(t *testing.T) {
	fields := []hpack.HeaderField{{Name: ":path", Value: "/p"}, {Name: "x-a", Value: "12345"}}
	const size = 5 + 2 + 32 + 3 + 5 + 32
	if got := headerListSize(fields); got != size {
		t.Fatalf("headerListSize = %d, want %d", got, size)
	}
	for limit, refused := range map[uint64]bool{size - 1: true, size: false, size + 1: false} {
		c := &h2Conn{headerLimit: limit}
		if fail := c.checkHeaderList(fields); (fail != nil) != refused {
			t.Errorf("a header list of %d bytes under a limit of %d: refused %v, want %v", size, limit, fail != nil, refused)
		}
	}
}

// TestGRPCFirstFrameNotSettings probes servers whose first frame is not
// the SETTINGS HTTP/2 has them send first, which grpc-go refuses.
func TestGRPCFirstFrameNotSettings(t *testing.T) {
	peer := func(c net.Conn) {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil {
			return
		}
		o := newH2Out(c, c)
		_ = o.fr.WritePing(false, pingData)
		_ = o.fr.WriteSettings()
		hangUp(c)
	}
	sink, err := probertest.Run(t, grpcModule(t, ""), probertest.RawServer(t, peer))
	perr := checkOutcome(t, err, failure{taxonomy.ClassProtocol, taxonomy.ReasonMalformedResponse, taxonomy.PhaseCheck})
	if !strings.Contains(perr.Error(), "first frame is PING") {
		t.Errorf("the error does not name the frame: %v", perr)
	}
	sameCode(t, sink, grpcGoCall{}.check(t, probertest.RawServer(t, peer)))
}
