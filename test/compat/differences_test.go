package compat

// tlsFamilies are BBE's TLS metric families.
const tlsFamilies = "probe_ssl_earliest_cert_expiry|probe_ssl_last_chain_expiry_timestamp_seconds|probe_ssl_last_chain_info|probe_tls_version_info|probe_tls_cipher_info"

// documented are the deliberate differences, each explained in
// docs/blackbox-differences.md under the section it names.
var documented = []*allowance{
	documentedDiff("tls-metrics-after-a-failed-verification",
		".*_(untrusted|expired|wrong_host|wrong_name|mtls_no_cert)|probe_hostname_(grpc|dot)", deltaFamily, tlsFamilies),
	documentedDiff("chain-expiry-without-a-verified-chain",
		".*_insecure", deltaValue, "probe_ssl_last_chain_expiry_timestamp_seconds"),
	documentedDiff("tls-cipher-for-tcp-and-unix",
		"(tcp|unix)_.*", deltaFamily, "probe_tls_cipher_info"),
	documentedDiff("dns-over-tls",
		"dns_dot.*", deltaFamily, tlsFamilies),
	documentedDiff("dns-over-tls",
		"dns_dot.*|probe_hostname_dot", deltaSeries, "probe_dns_duration_seconds").withSeries(`{phase="tls"}`),
	documentedDiff("truncated-dns-answers",
		"dns_big_udp", deltaValue, "probe_success"),
	documentedDiff("grpc-phases",
		"(probe_)?grpc_.*|probe_hostname_grpc", deltaSeries, "probe_grpc_duration_seconds").withSeries(`{phase="connect"}`),
	documentedDiff("grpc-phases",
		"(probe_)?grpc_.*|probe_hostname_grpc", deltaSeries, "probe_grpc_duration_seconds").withSeries(`{phase="tls"}`),
	documentedDiff("grpc-tls-metrics",
		"grpc_.*", deltaFamily, "probe_ssl_last_chain_expiry_timestamp_seconds|probe_tls_cipher_info"),
	documentedDiff("grpc-ipv6-targets",
		"grpc_ipv6", deltaValue, "probe_success|probe_grpc_status_code|probe_grpc_healthcheck_response"),
	documentedDiff("grpc-metadata-keys",
		"probe_grpc_metadata_uppercase", "", "probe_success|probe_grpc_.*"),
	documentedDiff("user-agent",
		"http_default_user_agent", deltaValue, "probe_http_content_length|probe_http_uncompressed_body_length"),
	documentedDiff("openmetrics-when-asked-for",
		"negotiation_(prometheus3_default|openmetrics_only)", deltaFormat, ""),
	documentedDiff("http3-with-compression",
		"http3_gzip", deltaValue, "probe_success|probe_http_content_length|probe_http_uncompressed_body_length"),
	documentedDiff("a-grpc-module-without-a-grpc-section",
		"grpc_default_protocol", "", ".*"),
	documentedDiff("dns_over_tls-without-transport_protocol",
		"probe_dns_dot_over_udp", "", tlsFamilies+"|probe_dns_duration_seconds"),
	documentedDiff("scrape-timeout-header",
		"probe_timeout_header_under_offset", deltaValue, "probe_success|probe_http_.*"),
}

// pending are the deltas found and not fixed yet. Each goes when sonde is
// fixed (or moves to documented when the lead decides to keep it); the test
// fails on an entry that matches nothing any more, so that the table only
// ever shrinks to what is left.
var pending = []*allowance{}
