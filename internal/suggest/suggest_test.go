package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"method", "metod", 1}, {"ab", "ba", 2}, {"same", "same", 0},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Distance(tc.b, tc.a); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetry)", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"tcp", "http", "icmp", "dns"}
	for _, tc := range []struct{ in, want string }{
		{"htp", "http"}, {"tpc", "tcp"}, {"dsn", "dns"}, {"xyzzy", ""}, {"", ""},
		{"ab", "aa"}, // a tie between aa and ac: the first alphabetically
	} {
		candidates := known
		if tc.in == "ab" {
			candidates = []string{"ac", "aa"}
		}
		if got := Closest(tc.in, candidates); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
