package acceptencoding

import "testing"

func TestAdmits(t *testing.T) {
	for _, tc := range []struct {
		header, compression string
		want                bool
	}{
		// Nothing to check without both.
		{"", "gzip", true},
		{"br", "", true},
		{"", "", true},
		// Listed.
		{"gzip", "gzip", true},
		{"br, gzip", "gzip", true},
		{"br,gzip", "gzip", true},
		{"  gzip  ", "gzip", true},
		{"GZIP", "gzip", true},
		{"gzip", "GZip", true},
		{"identity", "identity", true},
		// Not listed.
		{"br", "gzip", false},
		{"br, deflate", "gzip", false},
		{"gzip-ish", "gzip", false},
		{"xgzip", "gzip", false},
		// q-values: any quality above 0 accepts, even if not preferred.
		{"gzip;q=1.0", "gzip", true},
		{"gzip;q=0.001", "gzip", true},
		{"br;q=1.0, gzip;q=0.1", "gzip", true},
		{"gzip; q=0.5", "gzip", true},
		{"gzip;q=0", "gzip", false},
		{"gzip;q=0.0", "gzip", false},
		{"gzip;q=0.000", "gzip", false},
		{"br, gzip;q=0", "gzip", false},
		// "*" covers what is not listed.
		{"*", "gzip", true},
		{"br, *", "gzip", true},
		{"*;q=0.5", "br", true},
		{"*;q=0", "gzip", false},
		{"br, *;q=0", "gzip", false},
		// A listed encoding decides over "*", wherever each stands.
		{"*;q=0, gzip", "gzip", true},
		{"gzip, *;q=0", "gzip", true},
		{"gzip;q=0, *", "gzip", false},
		{"*, gzip;q=0", "gzip", false},
		// An unparsable quality is ignored, not taken as 0.
		{"gzip;q=high", "gzip", true},
	} {
		if got := Admits(tc.header, tc.compression); got != tc.want {
			t.Errorf("Admits(%q, %q) = %v, want %v", tc.header, tc.compression, got, tc.want)
		}
	}
}
