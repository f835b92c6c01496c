package e2e

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const exampleSharded = "../../examples/prometheus/prometheus-sharded.yml"

// hashmod is Prometheus's relabel action of that name: the last 8 bytes
// of the MD5 of the source labels' values joined by ";", modulo mod.
func hashmod(mod uint64, values ...string) uint64 {
	sum := md5.Sum([]byte(strings.Join(values, ";")))
	return binary.BigEndian.Uint64(sum[8:]) % mod
}

// placement is where a target should be probed from.
type placement struct{ shard, replica int }

// TestShardedProbing runs examples/prometheus/prometheus-sharded.yml as two
// Prometheus shards in front of two sonde replicas, and checks that every
// target is probed exactly once: by one shard, through one replica, the
// ones the hashes choose.
func TestShardedProbing(t *testing.T) {
	tool(t, "prometheus", "prometheus")
	const shards, replicas, module = 2, 2, "http_2xx"

	srv := httptest.NewServer(http.HandlerFunc(ok))
	t.Cleanup(srv.Close)

	// About ten targets, chosen so that every shard and every replica of
	// every shard has some: the server's port changes from run to run, and
	// with it the hashes, so a fixed list could leave a shard empty.
	want := map[string]placement{}
	count := map[placement]int{}
	for i := 0; len(want) < 10 || len(count) < shards*replicas || slices.Min(slices.Collect(maps.Values(count))) < 2; i++ {
		if i == 1000 {
			t.Fatalf("no spread of targets over %d shards and %d replicas after %d tries", shards, replicas, i)
		}
		target := fmt.Sprintf("%s/t%d", srv.URL, i)
		p := placement{int(hashmod(shards, target)), int(hashmod(replicas, module, target))}
		want[target] = p
		count[p]++
	}
	targets := slices.Sorted(maps.Keys(want))

	var sondes []string
	for r := range replicas {
		sondes = append(sondes, startSonde(t, "sonde-"+strconv.Itoa(r), "modules:\n  "+module+":\n    prober: http\n"))
	}
	emptySD := writeFile(t, t.TempDir(), "http.yml", []byte("[]\n"))

	var proms []promAPI
	for shard := range shards {
		cfg := readYAML(t, exampleSharded)
		asMap(cfg["global"])["external_labels"] = map[string]string{"shard": strconv.Itoa(shard)}
		setShard(t, cfg, shard, shards)
		proms = append(proms, startPrometheus(t, "prometheus-"+strconv.Itoa(shard), rewritePromConfig(t, cfg, promSetup{
			targets: map[string][]string{"sonde_http": targets, "sonde": sondes},
			fileSD:  map[string]string{"sonde_http": emptySD},
			sonde: func(rule map[string]any) (string, error) {
				r, err := strconv.Atoi(fmt.Sprint(rule["regex"]))
				if err != nil || r < 0 || r >= len(sondes) {
					return "", fmt.Errorf("a rule writing __address__ for replica %v: want 0 to %d", rule["regex"], len(sondes)-1)
				}
				return sondes[r], nil
			},
		})))
	}

	for shard, prom := range proms {
		var mine []string
		for _, target := range targets {
			if want[target].shard == shard {
				mine = append(mine, target)
			}
		}
		t.Run(fmt.Sprintf("shard %d scrapes its targets through their replicas", shard), func(t *testing.T) {
			eventually(t, dataTimeout, "the active targets", func() error {
				active, err := prom.activeTargets()
				if err != nil {
					return err
				}
				got := map[string]string{}
				for _, a := range active {
					if a.Labels["job"] != "sonde_http" {
						continue
					}
					u, err := url.Parse(a.ScrapeURL)
					if err != nil {
						return fmt.Errorf("scrape URL %q: %w", a.ScrapeURL, err)
					}
					got[a.Labels["instance"]] = u.Host
				}
				for _, target := range mine {
					if got[target] != sondes[want[target].replica] {
						return fmt.Errorf("%s: want it scraped through sonde %d (%s), got %q; all: %v", target, want[target].replica, sondes[want[target].replica], got[target], got)
					}
				}
				if len(got) != len(mine) {
					return fmt.Errorf("want %d targets, got %d: %v", len(mine), len(got), got)
				}
				return nil
			})
			eventually(t, dataTimeout, "probe_success of the shard's targets", func() error {
				got, err := prom.query(`probe_success{job="sonde_http"}`)
				if err != nil {
					return err
				}
				var instances []string
				for _, s := range got {
					instances = append(instances, s.Metric["instance"])
				}
				slices.Sort(instances)
				if !slices.Equal(instances, mine) {
					return fmt.Errorf("want the series of %v, got %s", mine, describe(got))
				}
				return nil
			})
		})
	}

	// Each replica ran the probes of its targets, and only those: sonde's
	// history has the latest probe of every target it probed.
	t.Run("each target probed by one replica", func(t *testing.T) {
		for _, target := range targets {
			for r, addr := range sondes {
				wantStatus := http.StatusNotFound
				if want[target].replica == r {
					wantStatus = http.StatusOK
				}
				u := "http://" + addr + "/logs?" + url.Values{"target": {target}, "module": {module}}.Encode()
				eventually(t, dataTimeout, fmt.Sprintf("sonde %d's log of %s", r, target), func() error {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					status, body, err := httpGet(ctx, u)
					if err != nil {
						return err
					}
					if status != wantStatus {
						return fmt.Errorf("GET %s: want %d, got %d: %s", u, wantStatus, status, trimmed(body))
					}
					return nil
				})
			}
		}
	})
}

// setShard finds the rules that pick the shard (a hashmod into a label,
// then a keep on that label) and sets this shard's number.
func setShard(t *testing.T, cfg map[string]any, shard, shards int) {
	t.Helper()
	for _, job := range list(cfg["scrape_configs"]) {
		job := asMap(job)
		if job["job_name"] != "sonde_http" {
			continue
		}
		hashLabel := ""
		for _, rule := range list(job["relabel_configs"]) {
			rule := asMap(rule)
			switch rule["action"] {
			case "hashmod":
				if hashLabel == "" {
					hashLabel, _ = rule["target_label"].(string)
					if rule["modulus"] != shards {
						t.Fatalf("the shard hashmod has modulus %v, want %d", rule["modulus"], shards)
					}
				}
			case "keep":
				if src := list(rule["source_labels"]); len(src) == 1 && src[0] == hashLabel {
					rule["regex"] = strconv.Itoa(shard)
					return
				}
			}
		}
	}
	t.Fatalf("%s: no hashmod and keep rules choosing the shard in job sonde_http", exampleSharded)
}
