package core

import (
	"context"
	"fmt"
	"strings"

	pconfig "github.com/prometheus/common/config"

	"github.com/sonde-exporter/sonde/internal/regularfile"
)

// Secret returns a reader for a secret given inline or in a file.
func Secret(inline pconfig.Secret, file, ref string) (pconfig.SecretReader, error) {
	if ref != "" {
		return nil, fmt.Errorf("secret reference %q: sonde has no secret manager; use the inline or _file form", ref)
	}
	if file != "" {
		return fileSecret(file), nil
	}
	return pconfig.NewInlineSecret(string(inline)), nil
}

// fileSecret is a secret read from a file on every use, as
// prometheus/common's FileSecret reads it, except that what is not a
// regular file is refused: reading a named pipe would hold the probe for
// ever.
type fileSecret string

func (s fileSecret) Fetch(context.Context) (string, error) {
	data, err := regularfile.Read(string(s))
	if err != nil {
		return "", fmt.Errorf("unable to read file %s: %w", string(s), err)
	}
	return strings.TrimSpace(string(data)), nil
}

func (s fileSecret) Description() string { return "file " + string(s) }

func (fileSecret) Immutable() bool { return false }
