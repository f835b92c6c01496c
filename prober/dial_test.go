package prober

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// dns_resolver sends the resolve phase to the named server instead of the
// system resolver: here the test server, which knows v4only.test.
func TestDNSResolverOption(t *testing.T) {
	probertest.TestResolver(t) // starts the test DNS server
	srv := probertest.NewServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), probertest.ServerOpts{})
	cm := config.DefaultModule()
	cm.Prober = "http"
	cm.DNSResolver = "udp://" + probertest.DNSAddr
	m, err := NewModule("m", cm) // no WithResolver: the option alone must do it
	if err != nil {
		t.Fatal(err)
	}
	sink, err := probertest.Run(t, m, "http://v4only.test:"+probertest.Port(t, srv.Listener.Addr().String()))
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 4, "probe_ip_protocol")

	// A failed lookup names the server that failed it, the module's (on
	// a port of its own), not the system's, which was never asked.
	closed := testkit.ClosedTCPAddr(t)
	for _, tc := range []struct {
		resolver, host string
		want           failure
		on             string
	}{
		{"udp://" + probertest.DNSAddr, "missing.test", failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve}, probertest.DNSAddr},
		{probertest.DNSAddr, probertest.ServfailName, failure{taxonomy.ClassDNS, taxonomy.ReasonServFail, taxonomy.PhaseResolve}, probertest.DNSAddr},
		{"tcp://" + closed, "missing.test", failure{taxonomy.ClassDNS, taxonomy.ReasonResolverError, taxonomy.PhaseResolve}, "tcp://" + closed},
	} {
		t.Run(tc.resolver+" "+tc.host, func(t *testing.T) {
			cm.DNSResolver = tc.resolver
			m, err := NewModule("m", cm)
			if err != nil {
				t.Fatal(err)
			}
			_, err = probertest.Run(t, m, "http://"+tc.host+"/")
			perr := checkOutcome(t, err, tc.want)
			if perr == nil {
				return
			}
			if on := "on " + tc.on + ":"; !strings.Contains(perr.Error(), on) {
				t.Errorf("error %q does not say %q", perr, on)
			}
		})
	}
}
