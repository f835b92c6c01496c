package cli

import (
	"crypto/x509/pkix"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/sonde-exporter/sonde/internal/testkit/testcert"
)

// secretsConfig has a module for each kind of secret the configuration
// marks as one, every module probing the same target, which checks the
// credentials it receives.
const secretsConfig = `
modules:
  basic:
    prober: http
    http:
      basic_auth: {username: probe, password: SECRET-basic-password}
  bearer:
    prober: http
    http:
      bearer_token: SECRET-bearer-token
  authorization:
    prober: http
    http:
      authorization: {type: Bearer, credentials: SECRET-authorization-credentials}
  oauth2:
    prober: http
    http:
      oauth2:
        client_id: probe
        client_secret: SECRET-oauth2-client-secret
        token_url: {{.Target}}/token
  headers:
    prober: http
    http:
      http_headers:
        X-Api-Key: {secrets: [SECRET-http-headers]}
  client_key:
    prober: http
    http:
      valid_status_codes: [401] # no credentials but the key, unused over http
      tls_config:
        cert: |
{{.Cert}}
        key: |
{{.Key}}
  websocket:
    prober: websocket
    websocket:
      http_config:
        basic_auth: {username: probe, password: SECRET-websocket-password}
`

// Secrets in the configuration are shown as <secret> on /config and never
// appear in a probe's debug output, /logs, the landing page or the main
// log, even at debug level, after probes that used them.
func TestSecretsAreMasked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const accessToken = "SECRET-oauth2-access-token"
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			r.ParseForm()
			if _, pass, _ := r.BasicAuth(); pass != "SECRET-oauth2-client-secret" && r.Form.Get("client_secret") != "SECRET-oauth2-client-secret" {
				http.Error(w, "bad client", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"`+accessToken+`","token_type":"Bearer","expires_in":3600}`)
			return
		}
		user, pass, _ := r.BasicAuth()
		switch {
		case pass == "SECRET-basic-password" && user == "probe",
			r.Header.Get("Authorization") == "Bearer SECRET-bearer-token",
			r.Header.Get("Authorization") == "Bearer SECRET-authorization-credentials",
			r.Header.Get("Authorization") == "Bearer "+accessToken,
			r.Header.Get("X-Api-Key") == "SECRET-http-headers":
			io.WriteString(w, "ok")
		default:
			http.Error(w, "no credentials", http.StatusUnauthorized)
		}
	}))
	defer target.Close()

	cert, key := clientKeyPair(t)
	var cfg strings.Builder
	template.Must(template.New("").Parse(secretsConfig)).Execute(&cfg, map[string]string{
		"Target": target.URL, "Cert": indent(cert, 10), "Key": indent(key, 10),
	})
	cfgFile := filepath.Join(t.TempDir(), "sonde.yml")
	writeFile(t, cfgFile, cfg.String())
	p := startSonde(t, cfgFile, "--log.level=debug", "--history.limit=20")

	secrets := []string{"SECRET-", accessToken, keyBody(key)}
	leaks := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				line := text[max(0, strings.Index(text, s)-200):min(len(text), strings.Index(text, s)+len(s)+50)]
				t.Errorf("%s shows the secret %q:\n...%s...", where, s, line)
			}
		}
	}

	for _, module := range []string{"basic", "bearer", "authorization", "oauth2", "headers", "client_key"} {
		code, body := p.probe(t, module, target.URL)
		if code != 200 || !strings.Contains(body, "probe_success 1") {
			t.Errorf("module %s: the probe did not pass the target's credential check: %d\n%s", module, code, body)
		}
		_, debug := p.get(t, "/probe?"+url.Values{"module": {module}, "target": {target.URL}, "debug": {"true"}}.Encode())
		if !strings.Contains(debug, "Module configuration:") {
			t.Errorf("module %s: no debug output:\n%s", module, debug)
		}
		leaks("the debug output of module "+module, debug)
	}
	// A password written into a URL target is masked too. The client sends
	// it (it wins over the module's token), and the target refuses it.
	withPassword := strings.Replace(target.URL, "://", "://probe:SECRET-url-password@", 1)
	if code, body := p.probe(t, "bearer", withPassword); code != 200 || !strings.Contains(body, `probe_failure_info{class="status",phase="validate",reason="http_status"} 1`) {
		t.Errorf("a target with a password in its URL: %d\n%s", code, body)
	}
	_, debug := p.get(t, "/probe?"+url.Values{"module": {"bearer"}, "target": {withPassword}, "debug": {"true"}}.Encode())
	leaks("the debug output of a target with a password", debug)
	// The websocket module's target is not a websocket server; the probe
	// fails, after sending its credentials.
	_, debug = p.get(t, "/probe?"+url.Values{"module": {"websocket"}, "target": {"ws" + strings.TrimPrefix(target.URL, "http")}, "debug": {"true"}}.Encode())
	leaks("the debug output of module websocket", debug)

	_, config := p.get(t, "/config")
	leaks("/config", config)
	if n := strings.Count(config, "<secret>"); n < 7 {
		t.Errorf("/config shows %d <secret>, want one for each of the 7 secrets:\n%s", n, config)
	}
	// The landing page, and every page it links to: /logs of each probe,
	// /config, /metrics and whatever else it offers.
	_, landing := p.get(t, "/")
	leaks("the landing page", landing)
	logsPages := 0
	for _, link := range regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(landing, -1) {
		ref := html.UnescapeString(link[1])
		if strings.Contains(ref, "://") {
			continue
		}
		code, page := p.get(t, "/"+strings.TrimPrefix(ref, "/"))
		if code != http.StatusOK {
			continue
		}
		if strings.HasPrefix(ref, "logs?") {
			logsPages++
		}
		leaks(ref, page)
	}
	if logsPages < 9 {
		t.Errorf("the landing page links to %d probe logs, want at least 9", logsPages)
	}
	time.Sleep(100 * time.Millisecond) // let the last lines reach the log
	leaks("the main log", p.logs.String())
}

// clientKeyPair returns a self-signed client certificate and its key,
// PEM encoded.
func clientKeyPair(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	c := testcert.SelfSigned(t, testcert.Spec{Subject: pkix.Name{CommonName: "probe"}, Client: true})
	return string(c.CertPEM()), string(c.KeyPEM())
}

// keyBody is a part of the key's PEM that nothing else contains.
func keyBody(keyPEM string) string {
	lines := strings.Split(strings.TrimSpace(keyPEM), "\n")
	return lines[1]
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}
