package unix

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/config"
	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
	"github.com/sonde-exporter/sonde/prober/core"
	"github.com/sonde-exporter/sonde/prober/internal/probertest"
	"github.com/sonde-exporter/sonde/prober/probemetrics"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ca := testcert.NewCA(t, testcert.Spec{})
	cert := ca.Issue(t, testcert.Named("app.internal"))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				p := probertest.NewPeer(t, c)
				p.Say("hello unix")
				if p.Hear("STARTTLS") {
					p.Say("OK")
					p.StartTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS()}})
					p.Say("secure")
				}
			}()
		}
	}()
	unixModule := func(mutate func(u *config.UnixProbe)) *core.Module {
		return defaultModule(t, "unix", func(cm *config.Module) {
			cm.Unix.TLSConfig.CAFile = ca.File(t)
			cm.Unix.TLSConfig.ServerName = "app.internal"
			mutate(&cm.Unix)
		})
	}
	probe := func(m *core.Module, target string) (*probemetrics.Sink, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		sink := probemetrics.NewSink()
		return sink, probeUnix(ctx, target, m, sink, probertest.DiscardLogger)
	}

	m := unixModule(func(u *config.UnixProbe) {
		u.QueryResponse = []config.QueryResponse{
			{Expect: config.MustNewRegexp("^hello unix$"), Send: "STARTTLS"},
			{Expect: config.MustNewRegexp("^OK$"), StartTLS: true},
			probertest.ExpectStep("^secure$"),
		}
	})
	sink, err := probe(m, path)
	checkOutcome(t, err, failure{})
	probertest.Metric(t, sink, 0, "probe_failed_due_to_regex")
	probertest.Metric(t, sink, 1, "probe_tls_version_info", "TLS 1.3")

	_, err = probe(m, filepath.Join(dir, "missing.sock"))
	checkOutcome(t, err, failure{taxonomy.ClassConnect, taxonomy.ReasonRefused, taxonomy.PhaseConnect})

	_, err = probe(m, "")
	checkOutcome(t, err, failure{taxonomy.ClassProber, taxonomy.ReasonInvalidTarget, taxonomy.PhaseSetup})

	notSocket := filepath.Join(dir, "plain")
	os.WriteFile(notSocket, nil, 0o600)
	_, err = probe(m, notSocket)
	var perr *taxonomy.Error
	if !errors.As(err, &perr) || perr.Class != taxonomy.ClassConnect {
		t.Errorf("a plain file: %v, want class connect", err)
	}
}

func probeUnix(ctx context.Context, target string, m *core.Module, sink *probemetrics.Sink, logger *slog.Logger) error {
	return m.Prepared.(*unixPrepared).Probe(ctx, target, m, sink, logger)
}
