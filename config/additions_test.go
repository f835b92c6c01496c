package config

import "testing"

// Options sonde adds to blackbox's schema: their defaults, values and errors.

func TestParseDNSResolver(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"10.0.0.53", "udp", "10.0.0.53:53"},
		{"10.0.0.53:5353", "udp", "10.0.0.53:5353"},
		{"tcp://10.0.0.53", "tcp", "10.0.0.53:53"},
		{"udp://[fd00::53]:5353", "udp", "[fd00::53]:5353"},
		{"fd00::53", "udp", "[fd00::53]:53"},
		{"[fd00::53]", "udp", "[fd00::53]:53"},
	} {
		network, addr, err := ParseDNSResolver(tc.in)
		if err != nil || network != tc.network || addr != tc.addr {
			t.Errorf("ParseDNSResolver(%q) = %q, %q, %v; want %q, %q", tc.in, network, addr, err, tc.network, tc.addr)
		}
	}
	for _, bad := range []string{"dns.example", "https://10.0.0.53", "10.0.0.53:http", "10.0.0.53:0", ""} {
		if _, _, err := ParseDNSResolver(bad); err == nil {
			t.Errorf("ParseDNSResolver(%q) accepted", bad)
		}
	}
}

func TestSondeOptionsLoad(t *testing.T) {
	cfg := mustLoad(t, yml(
		"modules:",
		"  smtp:",
		"    prober: tcp",
		"    dns_resolver: tcp://127.0.0.1:5353",
		"    tcp:",
		"      starttls_preset: smtp",
		"  doh:",
		"    prober: dns",
		"    dns:",
		"      transport_protocol: https",
		"      doh_method: GET",
		"      query_name: example.com",
	))
	assertEqual(t, "dns_resolver", cfg.Modules["smtp"].DNSResolver, "tcp://127.0.0.1:5353")
	assertEqual(t, "starttls_preset", cfg.Modules["smtp"].TCP.StartTLSPreset, "smtp")
	assertEqual(t, "doh_method", cfg.Modules["doh"].DNS.DoHMethod, "GET")
}

func TestSondeOptionErrors(t *testing.T) {
	tcp := func(lines ...string) string {
		return module(append([]string{"    prober: tcp", "    tcp:"}, lines...)...)
	}
	dnsModule := func(lines ...string) string {
		return module(append([]string{"    prober: dns", "    dns:", "      query_name: example.com"}, lines...)...)
	}
	runErrorCases(t, []errorCase{
		{name: "dns_resolver by name", src: module("    prober: http", "    dns_resolver: ns.example"),
			want: `line 4: module "m": dns_resolver: "ns.example" is not an IP address`},
		{name: "unknown preset", src: tcp("      starttls_preset: smtps"),
			want: `line 5: module "m": tcp.starttls_preset: "smtps" is not a preset; use one of smtp, imap, pop3, ftp, postgres`},
		{name: "preset with tls", src: tcp("      tls: true", "      starttls_preset: imap"),
			want: `line 6: module "m": tcp.starttls_preset: a preset upgrades a plain connection to TLS, so it cannot be combined with tls: true`},
		{name: "preset with a starttls step", src: tcp("      starttls_preset: pop3", "      query_response:", "        - starttls: true"),
			want: `line 5: module "m": tcp.starttls_preset: the preset already upgrades to TLS; remove the starttls step`},
		{name: "label names differ between steps", src: tcp("      query_response:",
			"        - expect: '^220 (.*)'", "          labels: [{name: banner, value: '${1}'}]",
			"        - expect: '^250 (.*)'", "          labels: [{name: greeting, value: '${1}'}]"),
			want: `line 9: module "m": tcp.query_response[1].labels: label names differ from step 0's`, warn: true},
		{name: "https with dns_over_tls", src: dnsModule("      transport_protocol: https", "      dns_over_tls: true"),
			want: `line 7: module "m": dns.dns_over_tls: transport_protocol https is already encrypted`},
		{name: "bad doh_method", src: dnsModule("      transport_protocol: https", "      doh_method: PUT"),
			want: `line 7: module "m": dns.doh_method: "PUT" is not supported; use POST or GET`},
		{name: "doh_method without https", src: dnsModule("      doh_method: GET"),
			want: `line 6: module "m": dns.doh_method: only applies to DNS over HTTPS`},
	})
}

func TestUnixTLSNeedsAServerName(t *testing.T) {
	runErrorCases(t, []errorCase{
		{name: "tls without server_name", src: module("    prober: unix", "    unix:", "      tls: true"),
			want: `line 4: module "m": unix.tls_config: TLS over a unix socket needs server_name`, warn: true},
		{name: "starttls without server_name", src: module("    prober: unix", "    unix:", "      query_response:", "        - starttls: true"),
			want: `line 4: module "m": unix.tls_config: TLS over a unix socket needs server_name`, warn: true},
	})
	mustLoad(t, module("    prober: unix", "    unix:", "      tls: true", "      tls_config: {server_name: app.internal}"))
	mustLoad(t, module("    prober: unix", "    unix:", "      tls: true", "      tls_config: {insecure_skip_verify: true}"))
}

func TestWithHostnameChecksWebsocketHostHeaders(t *testing.T) {
	m := DefaultModule()
	m.Websocket.HTTPConfig.Headers = map[string]Strings{"host": {"a.example"}}
	if _, err := m.WithHostname("b.example"); err == nil {
		t.Error("a hostname parameter disagreeing with websocket.http_config.headers Host was accepted")
	}
	m = DefaultModule()
	m.Websocket.Headers = map[string]string{"Host": "a.example"}
	if _, err := m.WithHostname("a.example"); err != nil {
		t.Errorf("an agreeing hostname was refused: %v", err)
	}
}

func TestICMPAdditions(t *testing.T) {
	m := mustModule(t, module("    prober: icmp", "    icmp:", "      packets: 5", "      packet_interval: 200ms", "      min_success_ratio: 0.6"), "m")
	assertEqual(t, "packets", m.ICMP.Packets, 5)
	assertEqual(t, "packet_interval", m.ICMP.PacketInterval.String(), "200ms")
	assertEqual(t, "min_success_ratio", m.ICMP.MinSuccessRatio, 0.6)
	icmp := func(line string) string { return module("    prober: icmp", "    icmp:", line) }
	runErrorCases(t, []errorCase{
		{name: "no packets", src: icmp("      packets: 0"), want: `line 5: module "m": icmp.packets: must be between 1 and 1000, got 0`},
		{name: "interval too short", src: icmp("      packet_interval: 100us"), want: `line 5: module "m": icmp.packet_interval: must be at least 1ms`},
		{name: "ratio above 1", src: icmp("      min_success_ratio: 1.5"), want: `line 5: module "m": icmp.min_success_ratio: must be between 0 and 1`},
	})
}

func TestOCSPOptions(t *testing.T) {
	cfg := mustLoad(t, yml(
		"modules:",
		"  strict:",
		"    prober: http",
		"    ocsp:",
		"      check: query",
		"      require_stapled: true",
		"      fail_on_unknown: true",
		"      cache_ttl: 5m",
		"  plain:",
		"    prober: tcp",
	))
	got := cfg.Modules["strict"].OCSP
	assertEqual(t, "check", got.Check, OCSPQuery)
	assertEqual(t, "require_stapled", got.RequireStapled, true)
	assertEqual(t, "fail_on_unknown", got.FailOnUnknown, true)
	assertEqual(t, "cache_ttl", got.CacheTTL.String(), "5m0s")
	assertEqual(t, "default", cfg.Modules["plain"].OCSP, DefaultOCSP())

	ocsp := func(lines ...string) string {
		return module(append([]string{"    prober: http", "    ocsp:"}, lines...)...)
	}
	runErrorCases(t, []errorCase{
		{name: "unknown check", src: ocsp("      check: crl"),
			want: `line 5: module "m": ocsp.check: "crl" is not a check; use one of none, stapled, query`},
		{name: "zero cache_ttl", src: ocsp("      cache_ttl: 0s"),
			want: `line 5: module "m": ocsp.cache_ttl: must be positive, got 0s`},
		{name: "none with fail_on_unknown", src: ocsp("      check: none", "      fail_on_unknown: true"),
			want: `line 5: module "m": ocsp.check: none turns OCSP off, so require_stapled and fail_on_unknown would never apply; use stapled or query`},
		{name: "misspelt key", src: ocsp("      requires_stapled: true"),
			want: `line 5: module "m": ocsp: unknown field "requires_stapled" (did you mean "require_stapled"?)`},
	})
}
