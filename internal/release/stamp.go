package release

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// versionPkg is where `sonde --version` reads its stamps from, as
// Prometheus' release tool (promu) and the Makefile's `build` set them.
const versionPkg = "github.com/prometheus/common/version"

// BuildDateLayout is promu's, which --version shows and the Makefile uses.
const BuildDateLayout = "20060102-15:04:05"

// Stamp is what a release binary says about itself in `sonde --version`.
// Nothing in it may come from the building machine or the clock, or two
// builds of the same commit would differ: BuildUser is fixed and the date is
// SOURCE_DATE_EPOCH (the commit's time, by default).
type Stamp struct {
	Version   string
	Revision  string
	Branch    string
	BuildUser string
	Date      time.Time
}

// ParseEpoch reads SOURCE_DATE_EPOCH: whole seconds since 1970, UTC.
func ParseEpoch(s string) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return time.Time{}, fmt.Errorf("no SOURCE_DATE_EPOCH: the Makefile takes the last commit's time from git; outside a git checkout, set it")
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want whole seconds since 1970", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// Check refuses a stamp that would give a binary or archive name nobody can
// tell apart: every field is needed.
func (s Stamp) Check() error {
	for _, f := range []struct{ name, value string }{
		{"version", s.Version}, {"revision", s.Revision}, {"branch", s.Branch}, {"build user", s.BuildUser},
	} {
		if strings.TrimSpace(f.value) == "" {
			return fmt.Errorf("release stamp: the %s is empty", f.name)
		}
		if strings.ContainsAny(f.value, " \t\n'\"") {
			return fmt.Errorf("release stamp: the %s %q has a space or quote, which -ldflags cannot carry", f.name, f.value)
		}
	}
	if strings.ContainsAny(s.Version, "/\\") {
		return fmt.Errorf("release stamp: the version %q has a path separator, and names files", s.Version)
	}
	if s.Date.IsZero() {
		return fmt.Errorf("release stamp: no date (SOURCE_DATE_EPOCH)")
	}
	return nil
}

// LDFlags sets the stamps. -s -w leave out the symbol table and DWARF,
// which only a debugger reads: a smaller download, and panics still print
// their stacks.
func (s Stamp) LDFlags() string {
	return strings.Join([]string{
		"-s", "-w",
		"-X", versionPkg + ".Version=" + s.Version,
		"-X", versionPkg + ".Revision=" + s.Revision,
		"-X", versionPkg + ".Branch=" + s.Branch,
		"-X", versionPkg + ".BuildUser=" + s.BuildUser,
		"-X", versionPkg + ".BuildDate=" + s.Date.UTC().Format(BuildDateLayout),
	}, " ")
}
