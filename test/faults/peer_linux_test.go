package faults

import (
	"bufio"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// peerRoleEnv, when set, makes the test binary the peer instead of running
// tests: startPeer runs it so inside the lab's namespace.
const peerRoleEnv = "SONDE_FAULTS_PEER"

// peerReady is the line the peer prints once every port listens.
const peerReady = "ready"

func TestMain(m *testing.M) {
	if os.Getenv(peerRoleEnv) != "" {
		os.Exit(runPeer())
	}
	os.Exit(m.Run())
}

// runPeer serves every port of the lab until its standard input closes.
func runPeer() int {
	logger := log.New(os.Stderr, "peer: ", log.Lmicroseconds)
	listen := func(port int) net.Listener {
		ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
		if err != nil {
			logger.Fatalf("listening on %d: %v", port, err)
		}
		return ln
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	quiet := log.New(io.Discard, "", 0)
	go (&http.Server{Handler: ok, ErrorLog: quiet}).Serve(listen(portHTTP))
	go (&http.Server{Handler: ok, ErrorLog: quiet, TLSConfig: selfSigned(logger)}).ServeTLS(listen(portHTTPS), "", "")
	go acceptEach(listen(portSilent), silent)
	go acceptEach(listen(portSlowloris), slowloris)
	// The dropped and reset ports listen, so that the probe would succeed
	// without the nftables rules: what it meets is the rule.
	go acceptEach(listen(portDropped), func(c net.Conn) { c.Close() })
	go acceptEach(listen(portReset), func(c net.Conn) { c.Close() })
	udp, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", portDNS))
	if err != nil {
		logger.Fatalf("listening on udp %d: %v", portDNS, err)
	}
	go func() { // reads the queries so the kernel sends no port unreachable, answers none
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	fmt.Println(peerReady)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func acceptEach(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go handle(c)
	}
}

// silent reads what the client sends and never answers, until the client
// hangs up.
func silent(c net.Conn) {
	defer c.Close()
	io.Copy(io.Discard, c)
}

// slowlorisGap is the pause between two bytes of the slowloris response.
const slowlorisGap = 50 * time.Millisecond

// slowloris reads the request, then sends a response one byte every
// slowlorisGap: the status line and an endless run of headers, so the
// client always has something arriving and never a whole response.
func slowloris(c net.Conn) {
	defer c.Close()
	if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
		req.Body.Close()
	}
	response := "HTTP/1.1 200 OK\r\n"
	for i, start := 0, time.Now(); time.Since(start) < time.Minute; i++ {
		for j := 0; j < len(response); j++ {
			if _, err := c.Write([]byte{response[j]}); err != nil {
				return
			}
			time.Sleep(slowlorisGap)
		}
		response = fmt.Sprintf("X-Slow-%d: yes\r\n", i)
	}
}

// selfSigned is a TLS configuration with a fresh self-signed certificate;
// the probes skip verification, as what is measured is the handshake's
// round trips.
func selfSigned(logger *log.Logger) *tls.Config {
	cert, err := testcert.MakeSelfSigned(testcert.Spec{Subject: pkix.Name{CommonName: "peer.faults.test"}})
	if err != nil {
		logger.Fatal(err)
	}
	cfg := cert.ServerConfig()
	// Classic X25519 alone: the post-quantum hybrid costs the peer,
	// which runs with the race detector in CI, milliseconds per
	// handshake that would blur the tls phase the test measures.
	cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	return cfg
}
