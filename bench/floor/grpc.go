package floor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http2"
)

// healthRequest is a gRPC message holding an empty HealthCheckRequest:
// uncompressed, zero length.
const healthRequest = "\x00\x00\x00\x00\x00"

// probeGRPC calls the standard health service's Check over HTTP/2 in
// clear text on a fresh connection and checks the call's status is OK.
func probeGRPC(ctx context.Context, target string) error {
	conn, err := dial(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	cc, err := new(http2.Transport).NewClientConn(conn)
	if err != nil {
		return err
	}
	defer cc.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+target+"/grpc.health.v1.Health/Check", strings.NewReader(healthRequest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if s := resp.Trailer.Get("Grpc-Status"); s != "0" {
		return fmt.Errorf("grpc-status %q", s)
	}
	return nil
}
