package examples

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sonde-exporter/sonde/config"
)

// The Kubernetes manifests of kubernetes/ cannot be applied here, so they
// are checked for what would break them or sonde once applied: kinds and
// API versions, the security settings sonde is documented to run with, the
// names that tie the objects together, a sonde configuration that sonde
// loads, and a Probe that prometheus-operator accepts.

// probeSpecFields are the fields of prometheus-operator's ProbeSpec and of
// the types under it that the example may use, from its API reference:
// https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.ProbeSpec
// (pkg/apis/monitoring/v1/probe_types.go in github.com/prometheus-operator/prometheus-operator).
// The operator's CRD prunes unknown fields silently, so a misspelt field
// would be lost without a word.
var probeSpecFields = map[string][]string{
	"spec": {
		"jobName", "prober", "module", "targets", "interval", "scrapeTimeout", "tlsConfig",
		"bearerTokenSecret", "basicAuth", "oauth2", "metricRelabelings", "authorization", "sampleLimit",
		"targetLimit", "scrapeProtocols", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit",
		"keepDroppedTargets", "scrapeClass",
	},
	"spec.prober":                        {"url", "scheme", "path", "proxyUrl"},
	"spec.targets":                       {"staticConfig", "ingress"},
	"spec.targets.staticConfig":          {"static", "labels", "relabelingConfigs"},
	"spec.targets.ingress":               {"selector", "namespaceSelector", "relabelingConfigs"},
	"spec.targets.*.relabelingConfigs[]": {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"},
}

// object is one Kubernetes object of a manifest file.
type object struct {
	file string
	doc  map[string]any
}

func (o object) kind() string { return str(o.doc, "kind") }
func (o object) name() string { return str(o.doc, "metadata.name") }

// loadManifests reads every object of every YAML file of dir.
func loadManifests(t *testing.T, dir string) (objects []object, kustomization map[string]any) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("parsing %s: %v", file, err)
			}
			if doc == nil {
				continue
			}
			if str(doc, "kind") == "Kustomization" {
				kustomization = doc
				continue
			}
			objects = append(objects, object{file: filepath.Base(file), doc: doc})
		}
	}
	return objects, kustomization
}

// get follows a dotted path of map keys; a key "[N]" indexes a list.
func get(v any, p string) any {
	for _, key := range strings.Split(p, ".") {
		if strings.HasPrefix(key, "[") {
			var i int
			fmt.Sscanf(key, "[%d]", &i)
			l, _ := v.([]any)
			if i >= len(l) {
				return nil
			}
			v = l[i]
			continue
		}
		m, _ := v.(map[string]any)
		v = m[key]
	}
	return v
}

func str(v any, p string) string {
	s, _ := get(v, p).(string)
	return s
}

func TestKubernetesManifests(t *testing.T) {
	objects, kustomization := loadManifests(t, "kubernetes")
	byKind := map[string]object{}
	for _, o := range objects {
		if _, dup := byKind[o.kind()]; dup {
			t.Fatalf("%s: a second %s; the test expects one of each", o.file, o.kind())
		}
		byKind[o.kind()] = o
	}

	t.Run("kinds and API versions", func(t *testing.T) {
		want := map[string]string{
			"ConfigMap":      "v1",
			"Deployment":     "apps/v1",
			"Service":        "v1",
			"Probe":          "monitoring.coreos.com/v1",
			"ServiceMonitor": "monitoring.coreos.com/v1",
		}
		for kind, apiVersion := range want {
			o, ok := byKind[kind]
			if !ok {
				t.Errorf("no %s", kind)
				continue
			}
			if got := str(o.doc, "apiVersion"); got != apiVersion {
				t.Errorf("%s: %s has apiVersion %q, want %q", o.file, kind, got, apiVersion)
			}
			if o.name() == "" || str(o.doc, "metadata.namespace") == "" {
				t.Errorf("%s: %s needs a name and a namespace", o.file, kind)
			}
		}
		for _, o := range objects {
			if _, ok := want[o.kind()]; !ok {
				t.Errorf("%s: %s is not checked by this test", o.file, o.kind())
			}
		}
		// kubectl apply -k applies what the kustomization lists.
		var listed []string
		for _, r := range list(get(kustomization, "resources")) {
			listed = append(listed, fmt.Sprint(r))
		}
		var files []string
		for _, o := range objects {
			files = append(files, o.file)
		}
		slices.Sort(listed)
		slices.Sort(files)
		if !slices.Equal(listed, slices.Compact(files)) {
			t.Errorf("kustomization.yaml lists %v, the directory has %v", listed, files)
		}
	})

	dep, svc, cm := byKind["Deployment"].doc, byKind["Service"].doc, byKind["ConfigMap"].doc
	pod := get(dep, "spec.template.spec")
	container := get(pod, "containers.[0]")

	t.Run("deployment security", func(t *testing.T) {
		for _, tc := range []struct {
			path string
			want any
		}{
			{"securityContext.runAsNonRoot", true},
			{"automountServiceAccountToken", false},
		} {
			if got := get(pod, tc.path); got != tc.want {
				t.Errorf("pod %s = %v, want %v", tc.path, got, tc.want)
			}
		}
		for _, tc := range []struct {
			path string
			want any
		}{
			{"securityContext.readOnlyRootFilesystem", true},
			{"securityContext.allowPrivilegeEscalation", false},
			{"securityContext.capabilities.drop.[0]", "ALL"},
		} {
			if got := get(container, tc.path); got != tc.want {
				t.Errorf("container %s = %v, want %v", tc.path, got, tc.want)
			}
		}
		if uid, ok := get(pod, "securityContext.runAsUser").(int); !ok || uid == 0 {
			t.Errorf("pod runAsUser = %v, want a non-root uid", get(pod, "securityContext.runAsUser"))
		}
		// ICMP without privileges: ping sockets for every group the pod may
		// run as (docs/icmp-privileges.md).
		found := false
		for _, s := range list(get(pod, "securityContext.sysctls")) {
			if str(s, "name") == "net.ipv4.ping_group_range" {
				found = true
				var lo, hi int64
				if _, err := fmt.Sscanf(str(s, "value"), "%d %d", &lo, &hi); err != nil {
					t.Errorf("ping_group_range %q: %v", str(s, "value"), err)
				}
				gid, _ := get(pod, "securityContext.runAsGroup").(int)
				if int64(gid) < lo || int64(gid) > hi {
					t.Errorf("ping_group_range %q leaves out the pod's group %d", str(s, "value"), gid)
				}
			}
		}
		if !found {
			t.Error("the pod does not set the sysctl net.ipv4.ping_group_range")
		}
		for _, res := range []string{"resources.requests.cpu", "resources.requests.memory", "resources.limits.memory"} {
			if get(container, res) == nil {
				t.Errorf("container %s is not set", res)
			}
		}
	})

	t.Run("health checks", func(t *testing.T) {
		port := str(get(container, "ports.[0]"), "name")
		for probe, want := range map[string]string{"livenessProbe": "/-/healthy", "readinessProbe": "/-/ready"} {
			if got := str(container, probe+".httpGet.path"); got != want {
				t.Errorf("%s path = %q, want %q (docs/configuration.md#endpoints)", probe, got, want)
			}
			if got := str(container, probe+".httpGet.port"); got != port {
				t.Errorf("%s port = %q, want the container's port %q", probe, got, port)
			}
		}
	})

	t.Run("names tie together", func(t *testing.T) {
		podLabels, _ := get(dep, "spec.template.metadata.labels").(map[string]any)
		if !matches(get(dep, "spec.selector.matchLabels"), podLabels) {
			t.Error("the Deployment's selector does not match its pods")
		}
		if !matches(get(svc, "spec.selector"), podLabels) {
			t.Error("the Service's selector does not match the Deployment's pods")
		}
		if got := str(svc, "spec.ports.[0].targetPort"); got != str(container, "ports.[0].name") {
			t.Errorf("the Service's targetPort %q is not the container's port", got)
		}
		sm := byKind["ServiceMonitor"].doc
		svcLabels, _ := get(svc, "metadata.labels").(map[string]any)
		if !matches(get(sm, "spec.selector.matchLabels"), svcLabels) {
			t.Error("the ServiceMonitor's selector does not match the Service")
		}
		if got := str(sm, "spec.endpoints.[0].port"); got != str(svc, "spec.ports.[0].name") {
			t.Errorf("the ServiceMonitor's port %q is not the Service's port name", got)
		}
		if got := str(sm, "spec.endpoints.[0].path"); got != "/metrics" {
			t.Errorf("the ServiceMonitor scrapes %q, want /metrics", got)
		}
		// The Probe's prober is the Service, by its cluster DNS name.
		probe := byKind["Probe"].doc
		wantURL := net.JoinHostPort(fmt.Sprintf("%s.%s.svc", str(svc, "metadata.name"), str(svc, "metadata.namespace")),
			fmt.Sprint(get(svc, "spec.ports.[0].port")))
		if got := str(probe, "spec.prober.url"); got != wantURL && got != strings.TrimSuffix(wantURL, ".svc") {
			t.Errorf("the Probe's prober.url is %q, want the Service, %q", got, wantURL)
		}
		if got := str(probe, "spec.prober.path"); got != "" && got != "/probe" {
			t.Errorf("the Probe's prober.path is %q, want /probe", got)
		}
	})

	t.Run("sonde configuration", func(t *testing.T) {
		cfg := sondeConfig(t, cm, container, pod)
		probe := byKind["Probe"].doc
		module := str(probe, "spec.module")
		if _, ok := cfg.Modules[module]; !ok {
			t.Errorf("the Probe's module %q is not in the ConfigMap's configuration (it has %v)", module, moduleNames(cfg))
		}
	})

	t.Run("probe spec fields", func(t *testing.T) {
		checkFields(t, "spec", get(byKind["Probe"].doc, "spec"))
		if len(list(get(byKind["Probe"].doc, "spec.targets.staticConfig.static"))) == 0 {
			t.Error("the Probe has no static targets")
		}
	})
}

// sondeConfig loads the configuration the container reads, with sonde's
// own loader: the file named by --config.file must be a key of the
// ConfigMap mounted at its directory.
func sondeConfig(t *testing.T, cm, container, pod any) *config.Config {
	t.Helper()
	var file string
	for _, a := range list(get(container, "args")) {
		if v, ok := strings.CutPrefix(fmt.Sprint(a), "--config.file="); ok {
			file = v
		}
	}
	if file == "" {
		t.Fatal("the container has no --config.file argument")
	}
	var volume string
	for _, m := range list(get(container, "volumeMounts")) {
		if str(m, "mountPath") == path.Dir(file) {
			volume = str(m, "name")
		}
	}
	var configMap string
	for _, v := range list(get(pod, "volumes")) {
		if str(v, "name") == volume {
			configMap = str(v, "configMap.name")
		}
	}
	if volume == "" || configMap != str(cm, "metadata.name") {
		t.Fatalf("%s is not mounted from the ConfigMap %s (volume %q, config map %q)", file, str(cm, "metadata.name"), volume, configMap)
	}
	cmData, _ := get(cm, "data").(map[string]any) // keys hold dots: no get
	data, ok := cmData[path.Base(file)].(string)
	if !ok {
		t.Fatalf("the ConfigMap has no key %s, which --config.file reads", path.Base(file))
	}
	cfg, err := config.Load([]byte(data))
	if err != nil {
		t.Fatalf("the ConfigMap's sonde configuration does not load: %v", err)
	}
	return cfg
}

func moduleNames(cfg *config.Config) []string {
	var names []string
	for name := range cfg.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// matches reports whether every label of selector is in labels.
func matches(selector any, labels map[string]any) bool {
	sel, _ := selector.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkFields reports the fields of v that probeSpecFields does not allow
// at path p, and descends into those it describes.
func checkFields(t *testing.T, p string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		allowed, ok := probeSpecFields[p]
		if !ok {
			return // a type the test does not describe (labels, selectors)
		}
		for k, child := range v {
			if !slices.Contains(allowed, k) {
				t.Errorf("Probe %s.%s is not a field of prometheus-operator's Probe (allowed: %v)", p, k, allowed)
				continue
			}
			checkFields(t, p+"."+k, child)
		}
	case []any:
		// Relabel rules look the same under staticConfig and ingress.
		item := p + "[]"
		if strings.HasSuffix(p, ".relabelingConfigs") {
			item = "spec.targets.*.relabelingConfigs[]"
		}
		for _, child := range v {
			checkFields(t, item, child)
		}
	}
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}
