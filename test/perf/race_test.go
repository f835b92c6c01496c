//go:build race

package perf

// raceEnabled is set when the tests run under the race detector.
const raceEnabled = true
