package prober

// registry lists the probers sonde can run, in blackbox's order. A new
// prober is a Descriptor and one line here.
var registry = []Descriptor{
	{Name: "http", Prepare: prepareHTTP},
	{Name: "tcp", Prepare: prepareTCP},
	{Name: "icmp", Prepare: prepareICMP},
	{Name: "dns", Prepare: prepareDNS},
	{Name: "grpc", Prepare: prepareGRPC},
	{Name: "unix", Prepare: prepareUnix},
	{Name: "websocket", Prepare: prepareWebsocket},
}
