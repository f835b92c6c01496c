package core

import (
	"errors"

	"github.com/sonde-exporter/sonde/internal/redact"
	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

// HidePassword rewrites *err, the failure to read target, so that it does
// not show the password written in target's userinfo: the messages of a
// target that cannot be read quote it, or a host or a port cut out of it,
// and they reach the probe's log, the main log and the pages. The labels
// stay; the cause becomes its masked text.
func HidePassword(err *error, target string) {
	if *err == nil || redact.Password(target) == target {
		return
	}
	var classified *taxonomy.Error
	if !errors.As(*err, &classified) || classified.Err == nil {
		*err = errors.New(redact.PasswordIn((*err).Error(), target))
		return
	}
	masked := *classified
	masked.Err = errors.New(redact.PasswordIn(classified.Err.Error(), target))
	*err = &masked
}
