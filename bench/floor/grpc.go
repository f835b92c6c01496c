package floor

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/net/http2/hpack"
)

// healthRequest is a gRPC message holding an empty HealthCheckRequest:
// uncompressed, zero length. serving is the answer of a server that is
// SERVING: a HealthCheckResponse whose field 1 is 1.
var (
	healthRequest = []byte{0, 0, 0, 0, 0}
	serving       = []byte{0, 0, 0, 0, 2, 0x08, 0x01}
)

// probeGRPC calls the standard health service's Check over HTTP/2 in
// clear text on a fresh connection, on x/net's framer as sonde does (a
// full client's per-connection machinery is no part of the floor), and
// checks the call's status is OK and the server SERVING.
func probeGRPC(ctx context.Context, target string) error {
	conn, err := dial(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	a, err := h2Call(conn, []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/grpc.health.v1.Health/Check"},
		{Name: ":authority", Value: target},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}, healthRequest)
	if err != nil {
		return err
	}
	if a.status != "200" || a.grpcStatus != "0" || !bytes.Equal(a.body, serving) {
		return fmt.Errorf(":status %q, grpc-status %q, answer %x", a.status, a.grpcStatus, a.body)
	}
	return nil
}
