package main

import "testing"

func TestModuleVersion(t *testing.T) {
	for _, tc := range []struct{ recorded, want string }{
		{"v0.1.0", "0.1.0"},           // go install …@v0.1.0
		{"v0.2.0-rc.1", "0.2.0-rc.1"}, // a pre-release tag
		{"v0.0.0-20261208032756-e84695b7c0de", "0.0.0-20261208032756-e84695b7c0de"}, // …@main, a pseudo-version
		{"(devel)", "devel"}, // go build in a checkout
		{"", "devel"},        // no build information
	} {
		if got := moduleVersion(tc.recorded); got != tc.want {
			t.Errorf("moduleVersion(%q) = %q, want %q", tc.recorded, got, tc.want)
		}
	}
}
