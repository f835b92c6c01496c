// Package acceptencoding reads Accept-Encoding header values: by the
// rules of HTTP, to choose how to answer a scrape, and by
// blackbox_exporter's own check of the header against a module's
// compression option, which a configuration must pass to load.
package acceptencoding

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// Listed is blackbox_exporter's check of an Accept-Encoding
// header against the compression option, which a file must pass to load:
// the entries, by descending quality, are compared with the compression
// name case-sensitively, and the first that is the name or "*" decides by
// its quality. An empty compression or header passes.
func Listed(acceptEncoding, compression string) bool {
	if compression == "" || acceptEncoding == "" {
		return true
	}
	type entry struct {
		name    string
		quality float64
	}
	var entries []entry
	for _, part := range strings.Split(acceptEncoding, ",") {
		e := entry{name: strings.TrimSpace(part), quality: 1}
		if i := strings.LastIndexByte(part, ';'); i >= 0 {
			e.name = strings.TrimSpace(part[:i])
			q := strings.TrimPrefix(strings.TrimSpace(part[i+1:]), "q=")
			f, err := strconv.ParseFloat(q, 32)
			if err != nil {
				f = 0
			}
			e.quality = math.Round(f*1000) / 1000
		}
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[j].quality < entries[i].quality })
	for _, e := range entries {
		if e.name == compression || e.name == "*" {
			return e.quality > 0
		}
	}
	return false
}

// Admits reports whether an Accept-Encoding value admits an
// encoding: listed, or covered by "*", with a quality above 0. An entry
// naming the encoding decides wherever it stands; "*" only covers encodings
// not listed (RFC 9110, section 12.5.3). An empty encoding or header admits
// anything, which is what the compression option needs.
func Admits(acceptEncoding, compression string) bool {
	if compression == "" || acceptEncoding == "" {
		return true
	}
	wildcard := -1.0 // the quality given to "*"; -1 when it is absent
	for _, part := range strings.Split(acceptEncoding, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		enc = strings.TrimSpace(enc)
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		switch {
		case strings.EqualFold(enc, compression):
			return q > 0
		case enc == "*" && wildcard < 0:
			wildcard = q
		}
	}
	return wildcard > 0
}
