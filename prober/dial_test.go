package prober

import (
	"net/http"
	"testing"

	"github.com/sonde-exporter/sonde/config"
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

	_, err = probertest.Run(t, m, "http://missing.test/")
	checkOutcome(t, err, failure{taxonomy.ClassDNS, taxonomy.ReasonNXDomain, taxonomy.PhaseResolve})
}
