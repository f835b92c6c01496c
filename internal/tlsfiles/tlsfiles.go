// Package tlsfiles builds a tls_config's client configuration as
// prometheus/common's NewTLSConfig does, with the same errors, but shares
// what it parses: a CA bundle or a client key pair that many modules name
// is read and parsed once per configuration, and again only when its file
// changes. Parsing a 220 KB bundle once per module cost blackbox_exporter
// users nothing (it parses per probe and lets the result go) but would
// keep one copy per module alive here.
package tlsfiles

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/internal/regularfile"
)

// Cache holds the CA pools and client key pairs of one configuration. It
// belongs to that configuration and goes with it: what the next one names
// is parsed into the next one's cache, so entries no module uses are not
// kept across reloads. Within one configuration there is one entry per
// file (or per inline content, or per certificate and key pair), replaced
// when the content changes, so the cache cannot grow with rewrites. It is
// safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	pools map[string]*poolEntry // by source: "file " + path, or "inline " + content hash
	pairs map[[2]string]*pairEntry
}

// New returns an empty cache.
func New() *Cache {
	return &Cache{pools: map[string]*poolEntry{}, pairs: map[[2]string]*pairEntry{}}
}

// content is what was read from one source, and how to tell whether the
// source still holds it without reading it again.
type content struct {
	sum  [sha256.Size]byte
	file fs.FileInfo // nil for inline content
}

// unchanged reports whether info describes the very file c was read from,
// not written since: the same file (device and inode), size and
// modification time. Anything else is read again and compared by content.
func (c content) unchanged(info fs.FileInfo) bool {
	return c.file != nil && info != nil && os.SameFile(c.file, info) &&
		c.file.Size() == info.Size() && c.file.ModTime().Equal(info.ModTime())
}

type poolEntry struct {
	content
	pool *x509.CertPool
	err  error
}

type pairEntry struct {
	cert, key content
	pair      *tls.Certificate
	err       error
}

// TLSConfig returns the client configuration cfg describes, as
// pconfig.NewTLSConfig would: the same checks, in the same order, with the
// same messages. Its RootCAs and client certificate are shared with every
// other configuration built from the same files. Like prometheus/common,
// the client certificate and key are read again at each handshake that
// asks for them, so a rotated pair is used without a reload; they are
// parsed again only when they changed.
func (c *Cache) TLSConfig(cfg *pconfig.TLSConfig) (*tls.Config, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// prometheus/common does everything but the files: versions, server
	// name, and whatever a later version adds.
	rest := *cfg
	rest.CA, rest.CAFile, rest.CARef = "", "", ""
	rest.Cert, rest.CertFile, rest.CertRef = "", "", ""
	rest.Key, rest.KeyFile, rest.KeyRef = "", "", ""
	t, err := pconfig.NewTLSConfig(&rest)
	if err != nil {
		return nil, err
	}
	if t.RootCAs, err = c.rootCAs(cfg); err != nil {
		return nil, err
	}
	if usingClientCert(cfg) {
		pair := *cfg
		if _, err := c.clientCert(&pair); err != nil {
			return nil, err
		}
		t.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.clientCert(&pair)
		}
	}
	return t, nil
}

func usingClientCert(cfg *pconfig.TLSConfig) bool {
	return cfg.Cert != "" || cfg.CertFile != "" || cfg.CertRef != ""
}

// errNoSecretManager is prometheus/common's error for a *_ref field
// without a secret manager, which sonde does not have.
var errNoSecretManager = errors.New("cannot use secret ref without manager")

// rootCAs returns the shared pool of the configured CA, nil for none.
func (c *Cache) rootCAs(cfg *pconfig.TLSConfig) (*x509.CertPool, error) {
	var (
		e   *poolEntry
		err error
	)
	switch {
	case cfg.CA != "":
		e = c.inlinePool(cfg.CA)
	case cfg.CAFile != "":
		e, err = c.filePool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("unable to read CA cert: %w", err)
		}
	case cfg.CARef != "":
		return nil, fmt.Errorf("unable to use CA cert: %w", errNoSecretManager)
	default:
		return nil, nil
	}
	return e.pool, e.err
}

func (c *Cache) inlinePool(pem string) *poolEntry {
	sum := sha256.Sum256([]byte(pem))
	key := fmt.Sprintf("inline %x", sum)
	c.mu.Lock()
	e := c.pools[key]
	c.mu.Unlock()
	if e != nil {
		return e
	}
	e = &poolEntry{content: content{sum: sum}}
	e.pool, e.err = parsePool([]byte(pem), "inline")
	return c.storePool(key, e)
}

// filePool returns the entry of the CA file at path, parsing it only when
// it is new or has changed.
func (c *Cache) filePool(path string) (*poolEntry, error) {
	key := "file " + path
	c.mu.Lock()
	old := c.pools[key]
	c.mu.Unlock()
	data, read, err := readIfChanged(path, old.read())
	if err != nil {
		return nil, err
	}
	switch {
	case data == nil:
		return old, nil
	case old != nil && old.sum == read.sum:
		// Written again with the same content: the same pool.
		return c.storePool(key, &poolEntry{content: read, pool: old.pool, err: old.err}), nil
	}
	e := &poolEntry{content: read}
	e.pool, e.err = parsePool(data, "file "+path)
	return c.storePool(key, e), nil
}

func (e *poolEntry) read() *content {
	if e == nil {
		return nil
	}
	return &e.content
}

// storePool makes e the entry of key. Entries are never changed once
// stored, so that lookups read them without the lock.
func (c *Cache) storePool(key string, e *poolEntry) *poolEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pools[key] = e
	return e
}

// parsePool parses PEM certificates, failing as prometheus/common does
// when none is found. described is "file <path>" or "inline".
func parsePool(pem []byte, described string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("unable to use specified CA cert %s", described)
	}
	return pool, nil
}

// readIfChanged opens path, refusing what is not a regular file, and
// reads it unless old says it has not changed; then data is nil and the
// content returned is old's, with the file as it is now.
func readIfChanged(path string, old *content) (data []byte, read content, err error) {
	f, info, err := regularfile.Open(path)
	if err != nil {
		return nil, content{}, fmt.Errorf("unable to read file %s: %w", path, err)
	}
	defer f.Close()
	if old != nil && old.unchanged(info) {
		return nil, *old, nil
	}
	data, err = regularfile.ReadOpen(f, info)
	if err != nil {
		return nil, content{}, fmt.Errorf("unable to read file %s: %w", path, err)
	}
	// prometheus/common trims what it reads from a file; so does sonde,
	// so that the same files give the same results.
	data = []byte(strings.TrimSpace(string(data)))
	return data, content{sum: sha256.Sum256(data), file: info}, nil
}

// clientCert returns the shared client key pair cfg names, read from its
// files (or given inline) and parsed only when it changed.
func (c *Cache) clientCert(cfg *pconfig.TLSConfig) (*tls.Certificate, error) {
	if cfg.CertRef != "" {
		return nil, fmt.Errorf("unable to use client cert: %w", errNoSecretManager)
	}
	if cfg.KeyRef != "" {
		return nil, fmt.Errorf("unable to use client key: %w", errNoSecretManager)
	}
	key := [2]string{source(cfg.Cert, cfg.CertFile), source(string(cfg.Key), cfg.KeyFile)}
	c.mu.Lock()
	old := c.pairs[key]
	c.mu.Unlock()
	var oldCert, oldKey *content
	if old != nil {
		oldCert, oldKey = &old.cert, &old.key
	}
	certPEM, cert, err := sourceContent(cfg.Cert, cfg.CertFile, oldCert)
	if err != nil {
		return nil, fmt.Errorf("unable to read specified client cert: %w", err)
	}
	keyPEM, keyRead, err := sourceContent(string(cfg.Key), cfg.KeyFile, oldKey)
	if err != nil {
		return nil, fmt.Errorf("unable to read specified client key: %w", err)
	}
	if old != nil && cert == old.cert && keyRead == old.key {
		return old.pair, old.err // the files have not changed
	}
	e := &pairEntry{cert: cert, key: keyRead}
	if old != nil && old.cert.sum == cert.sum && old.key.sum == keyRead.sum {
		e.pair, e.err = old.pair, old.err
	} else {
		if certPEM == nil {
			// One of the two changed: the other, unchanged, is read again.
			if certPEM, _, err = sourceContent(cfg.Cert, cfg.CertFile, nil); err != nil {
				return nil, fmt.Errorf("unable to read specified client cert: %w", err)
			}
		}
		if keyPEM == nil {
			if keyPEM, _, err = sourceContent(string(cfg.Key), cfg.KeyFile, nil); err != nil {
				return nil, fmt.Errorf("unable to read specified client key: %w", err)
			}
		}
		e.pair, e.err = parsePair(certPEM, keyPEM, describe(cfg.Cert, cfg.CertFile), describe(string(cfg.Key), cfg.KeyFile))
	}
	c.mu.Lock()
	c.pairs[key] = e
	c.mu.Unlock()
	return e.pair, e.err
}

// source names where a PEM comes from, as the cache keys it.
func source(inline, file string) string {
	if inline != "" {
		return fmt.Sprintf("inline %x", sha256.Sum256([]byte(inline)))
	}
	return "file " + file
}

// describe names a source as prometheus/common does in its messages.
func describe(inline, file string) string {
	if inline != "" {
		return "inline"
	}
	return "file " + file
}

// sourceContent returns inline content as it is, or the file's content
// when it changed since old (nil data when it did not).
func sourceContent(inline, file string, old *content) ([]byte, content, error) {
	if inline != "" {
		return []byte(inline), content{sum: sha256.Sum256([]byte(inline))}, nil
	}
	return readIfChanged(file, old)
}

func parsePair(certPEM, keyPEM []byte, certFrom, keyFrom string) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("unable to use specified client cert (%s) & key (%s): %w", certFrom, keyFrom, err)
	}
	return &pair, nil
}
