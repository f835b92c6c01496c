package netdial

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/prober/policy"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// failure is the classification a test expects; the zero value is success.
type failure struct {
	class  taxonomy.Class
	reason taxonomy.Reason
	phase  taxonomy.Phase
}

// checkOutcome fails the test unless err is classified as want, and
// returns the classified error.
func checkOutcome(t *testing.T, err error, want failure) *taxonomy.Error {
	t.Helper()
	if want == (failure{}) {
		if err != nil {
			t.Fatalf("failed, want success: %v", err)
		}
		return nil
	}
	var perr *taxonomy.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v (%T) is not a *taxonomy.Error, want %v", err, err, want)
	}
	if got := (failure{perr.Class, perr.Reason, perr.Phase}); got != want {
		t.Fatalf("failure = %v, want %v; error: %v", got, want, err)
	}
	return perr
}

func TestSourceAddress(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			got <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	host, p, _ := net.SplitHostPort(l.Addr().String())
	for _, tc := range []struct {
		name, source, protocol string
		want                   failure
		message                string
	}{
		{"bound", "127.0.0.2", "ip4", failure{}, ""},
		{"not on this host", "192.0.2.1", "ip4", failure{taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect}, "is not an address of this host"},
		{"other family", "::1", "ip4", failure{taxonomy.ClassProber, taxonomy.ReasonSourceAddress, taxonomy.PhaseConnect}, "set preferred_ip_protocol to ip6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Endpoint{Network: "tcp", Host: host, Port: p, Protocol: tc.protocol, Source: tc.source}
			d, err := DialEndpoint(context.Background(), net.DefaultResolver, nil, e, probemetrics.NewSink(), discard)
			perr := checkOutcome(t, err, tc.want)
			if perr != nil && !strings.Contains(perr.Error(), tc.message) {
				t.Errorf("error %v does not say %q", perr, tc.message)
			}
			if err == nil {
				d.Conn.Close()
				if ip := <-got; ip != tc.source {
					t.Errorf("the server saw %s, want %s", ip, tc.source)
				}
			}
		})
	}
}

// The policy is checked on the name before the lookup and on the address
// after it, and a refused address exports no hash of it.
func TestDialEndpointObeysThePolicy(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	deny := func(entries ...string) *policy.Target {
		p, err := policy.New("m", &config.Module{Prober: "tcp", Targets: config.Targets{Deny: entries}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		policy *policy.Target
		host   string
		want   failure
	}{
		{"allowed", deny("10.0.0.0/8"), "127.0.0.1", failure{}},
		{"denied address", deny("127.0.0.0/8"), "127.0.0.1", failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseResolve}},
		{"denied name", deny("localhost"), "localhost", failure{taxonomy.ClassProber, taxonomy.ReasonTargetDenied, taxonomy.PhaseSetup}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := probemetrics.NewSink()
			e := Endpoint{Network: "tcp", Host: tc.host, Port: port, Protocol: "ip4"}
			d, err := DialEndpoint(context.Background(), net.DefaultResolver, tc.policy, e, sink, discard)
			checkOutcome(t, err, tc.want)
			if err == nil {
				d.Conn.Close()
				return
			}
			if v, ok := sink.Value("probe_ip_addr_hash"); ok && v != 0 {
				t.Errorf("a refused target exported probe_ip_addr_hash %v", v)
			}
		})
	}
}

func TestBindDeadlineEndsReadsWhenCancelled(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	ctx, cancel := context.WithCancel(context.Background())
	release := BindDeadline(ctx, client)
	defer release()
	cancel()
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after cancel = %v, want the deadline exceeded", err)
	}
}
