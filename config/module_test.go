package config

import (
	"strings"
	"testing"
)

func TestWithHostname(t *testing.T) {
	base := func(headers map[string]string, tcpSNI, grpcSNI string) Module {
		m := DefaultModule()
		m.Prober = "http"
		m.HTTP.Headers = headers
		m.HTTP.HTTPClientConfig.TLSConfig.ServerName = "http-sni.example" // never touched: http's SNI follows Host
		m.TCP.TLSConfig.ServerName = tcpSNI
		m.GRPC.TLSConfig.ServerName = grpcSNI
		return m
	}
	for _, tc := range []struct {
		name        string
		module      Module
		hostname    string
		wantHeaders map[string]string
		wantTCP     string
		wantErr     string
	}{
		{
			name:        "no headers",
			module:      base(nil, "", ""),
			hostname:    "vhost.example.com",
			wantHeaders: map[string]string{"Host": "vhost.example.com"},
			wantTCP:     "vhost.example.com",
		},
		{
			name:        "other headers are kept",
			module:      base(map[string]string{"X-A": "1", "Accept": "text/html"}, "", ""),
			hostname:    "vhost.example.com",
			wantHeaders: map[string]string{"X-A": "1", "Accept": "text/html", "Host": "vhost.example.com"},
			wantTCP:     "vhost.example.com",
		},
		{
			name:        "configured server names win",
			module:      base(nil, "tcp.example", "grpc.example"),
			hostname:    "vhost.example.com",
			wantHeaders: map[string]string{"Host": "vhost.example.com"},
			wantTCP:     "tcp.example",
		},
		{
			name:        "hostname with port",
			module:      base(nil, "", ""),
			hostname:    "vhost.example.com:8443",
			wantHeaders: map[string]string{"Host": "vhost.example.com:8443"},
			wantTCP:     "vhost.example.com:8443",
		},
		{
			name:        "same Host header in another case is folded into one",
			module:      base(map[string]string{"host": "vhost.example.com", "X-A": "1"}, "", ""),
			hostname:    "vhost.example.com",
			wantHeaders: map[string]string{"Host": "vhost.example.com", "X-A": "1"},
			wantTCP:     "vhost.example.com",
		},
		{
			name:     "different Host header",
			module:   base(map[string]string{"Host": "configured.example"}, "", ""),
			hostname: "vhost.example.com",
			wantErr:  `the module sets the Host header to "configured.example" and the hostname parameter asks for "vhost.example.com"`,
		},
		{
			name:     "different Host header in lower case",
			module:   base(map[string]string{"host": "configured.example"}, "", ""),
			hostname: "vhost.example.com",
			wantErr:  `sets the Host header to "configured.example"`,
		},
		{
			name:     "different Host header in upper case",
			module:   base(map[string]string{"HOST": "configured.example"}, "", ""),
			hostname: "vhost.example.com",
			wantErr:  `sets the Host header to "configured.example"`,
		},
		{
			// Taken as given, as blackbox takes it: the prober that
			// would send it fails the probe (not the scrape).
			name: "space", module: base(nil, "", ""), hostname: "v host",
			wantHeaders: map[string]string{"Host": "v host"}, wantTCP: "v host",
		},
		{
			name: "slash", module: base(nil, "", ""), hostname: "vhost/path",
			wantHeaders: map[string]string{"Host": "vhost/path"}, wantTCP: "vhost/path",
		},
		{
			name: "newline", module: base(nil, "", ""), hostname: "vhost\r\nX-Injected: 1",
			wantHeaders: map[string]string{"Host": "vhost\r\nX-Injected: 1"}, wantTCP: "vhost\r\nX-Injected: 1",
		},
		{
			name: "tab", module: base(nil, "", ""), hostname: "v\thost",
			wantHeaders: map[string]string{"Host": "v\thost"}, wantTCP: "v\thost",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origHeaders := copyMap(tc.module.HTTP.Headers)
			got, err := tc.module.WithHostname(tc.hostname)
			// Modules are shared by concurrent probes: the original must
			// not change, whatever the outcome.
			assertEqual(t, "original headers", tc.module.HTTP.Headers, origHeaders)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertEqual(t, "headers", got.HTTP.Headers, tc.wantHeaders)
			assertEqual(t, "tcp server_name", got.TCP.TLSConfig.ServerName, tc.wantTCP)
			// As in blackbox, grpc and dns ignore the hostname parameter.
			assertEqual(t, "grpc server_name", got.GRPC.TLSConfig.ServerName, tc.module.GRPC.TLSConfig.ServerName)
			assertEqual(t, "dns server_name", got.DNS.TLSConfig.ServerName, tc.module.DNS.TLSConfig.ServerName)
			assertEqual(t, "http server_name", got.HTTP.HTTPClientConfig.TLSConfig.ServerName, "http-sni.example")
			assertEqual(t, "prober", got.Prober, tc.module.Prober)
			if host, ok := got.HTTP.HostHeader(); !ok || host != tc.hostname {
				t.Errorf("HostHeader() = %q, %v; want %q", host, ok, tc.hostname)
			}
			// Writing to the copy's headers must not reach the original.
			got.HTTP.Headers["X-Later"] = "x"
			assertEqual(t, "original headers after writing to the copy", tc.module.HTTP.Headers, origHeaders)
		})
	}

	t.Run("empty hostname is a no-op", func(t *testing.T) {
		m := base(map[string]string{"Host": "configured.example"}, "", "")
		got, err := m.WithHostname("")
		if err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "headers", got.HTTP.Headers, map[string]string{"Host": "configured.example"})
		assertEqual(t, "tcp server_name", got.TCP.TLSConfig.ServerName, "")
	})
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestHostHeader(t *testing.T) {
	for _, tc := range []struct {
		headers map[string]string
		want    string
		ok      bool
	}{
		{nil, "", false},
		{map[string]string{"X-Host": "a"}, "", false},
		{map[string]string{"Host": "a"}, "a", true},
		{map[string]string{"host": "b"}, "b", true},
		{map[string]string{"hOsT": "c", "X": "y"}, "c", true},
	} {
		h := HTTPProbe{Headers: tc.headers}
		got, ok := h.HostHeader()
		if got != tc.want || ok != tc.ok {
			t.Errorf("HostHeader(%v) = %q, %v; want %q, %v", tc.headers, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStatusOK(t *testing.T) {
	for _, tc := range []struct {
		name  string
		valid []int
		ok    []int
		notOK []int
	}{
		{
			name:  "default is any 2xx",
			ok:    []int{200, 201, 204, 226, 299},
			notOK: []int{0, 100, 101, 199, 300, 301, 304, 404, 500, 599},
		},
		{
			name:  "empty list is the default",
			valid: []int{},
			ok:    []int{200, 299},
			notOK: []int{300, 199},
		},
		{
			name:  "only the listed codes",
			valid: []int{200, 301, 404},
			ok:    []int{200, 301, 404},
			notOK: []int{201, 204, 302, 500},
		},
		{
			name:  "a list replaces 2xx rather than adding to it",
			valid: []int{503},
			ok:    []int{503},
			notOK: []int{200, 204},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &HTTPProbe{ValidStatusCodes: tc.valid}
			for _, c := range tc.ok {
				if !h.StatusOK(c) {
					t.Errorf("StatusOK(%d) = false, want true", c)
				}
			}
			for _, c := range tc.notOK {
				if h.StatusOK(c) {
					t.Errorf("StatusOK(%d) = true, want false", c)
				}
			}
		})
	}
}

func TestClosest(t *testing.T) {
	known := []string{"method", "headers", "body", "body_file", "timeout", "tls_config"}
	for _, tc := range []struct{ in, want string }{
		{"metod", "method"},
		{"METHOD", "method"},
		{"header", "headers"},
		{"bodyfile", "body_file"},
		{"timout", "timeout"},
		{"tls-config", "tls_config"},
		{"bdy", "body"},
		// Too far from everything to be a typo.
		{"frobnicate", ""},
		{"xyzzy", ""},
	} {
		if got := closest(tc.in, known); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRegexpAndCELHelpers(t *testing.T) {
	re := MustNewRegexp("b+")
	if !re.IsSet() || re.String() != "b+" || !re.MatchString("abbbc") {
		t.Errorf("MustNewRegexp(b+) = %v; want a set, unanchored expression", re)
	}
	if (Regexp{}).IsSet() {
		t.Error("zero Regexp reports IsSet")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNewRegexp did not panic on an invalid expression")
		}
	}()
	MustNewRegexp("(")
}

func TestCELBodyShapes(t *testing.T) {
	// body is dynamic, so an expression over a JSON array or scalar body
	// compiles as well as one over an object.
	for _, tc := range []struct {
		expr string
		body any
		want bool
	}{
		{`body.ok == true`, map[string]any{"ok": true}, true},
		{`size(body) == 2`, []any{1, 2}, true},
		{`body == "up"`, "up", true},
		{`body > 3.0`, 2.5, false},
		{`"a" in body`, map[string]any{"b": 1}, false},
	} {
		p, err := NewCELProgram(tc.expr)
		if err != nil {
			t.Errorf("NewCELProgram(%q): %v", tc.expr, err)
			continue
		}
		v, _, err := p.Eval(map[string]any{"body": tc.body})
		if err != nil || v.Value() != tc.want {
			t.Errorf("%q over %v = %v, %v; want %v", tc.expr, tc.body, v, err, tc.want)
		}
	}
}
