// Package faults puts sonde's probers in front of a network that misbehaves:
// loss, delay, a blackhole, resets, a peer that never answers, a slowloris
// server and a silent DNS server. The peer runs in a network namespace the
// test makes (Linux, root), reached over a veth pair or a delay line; the
// probers run in the test process, in the root namespace, as they would in
// the exporter. Each probe must end by its deadline (plus a margin a busy
// machine cannot break) with the class, reason and phase docs/error-classes.md promises.
package faults
