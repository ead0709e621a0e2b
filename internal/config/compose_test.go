package config_test

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The compose file publishes only the API on the host's interfaces (SPEC §8):
// every other service publishes nothing, or only on 127.0.0.1, and none
// shares the host's network.
func TestComposePublishesOnlyTheAPI(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Ports       []yaml.Node `yaml:"ports"`
			NetworkMode string      `yaml:"network_mode"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	if len(compose.Services) < 6 {
		t.Fatalf("only %d services read from docker-compose.yml", len(compose.Services))
	}
	public := map[string]int{}
	for name, svc := range compose.Services {
		if svc.NetworkMode == "host" {
			t.Errorf("%s shares the host's network", name)
		}
		for _, p := range svc.Ports {
			if !loopbackOnly(t, &p) {
				public[name]++
			}
		}
	}
	if public["serve"] == 0 {
		t.Errorf("the API (serve) is not published: %v", public)
	}
	delete(public, "serve")
	for name := range public {
		t.Errorf("%s publishes a port on every interface; bind it to 127.0.0.1 or drop it", name)
	}
}

// loopbackOnly reports whether a ports entry binds the host side to
// 127.0.0.1: short syntax "127.0.0.1:HOST:CONTAINER", or the long one with
// host_ip.
func loopbackOnly(t *testing.T, n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		return strings.HasPrefix(n.Value, "127.0.0.1:")
	case yaml.MappingNode:
		var long struct {
			HostIP string `yaml:"host_ip"`
		}
		if err := n.Decode(&long); err != nil {
			t.Fatal(err)
		}
		return long.HostIP == "127.0.0.1"
	}
	t.Fatalf("unreadable ports entry at line %d", n.Line)
	return false
}

// The compose stack's Prometheus scrapes the metrics listener of serve and
// worker (where COUNTERSIGN_METRICS_ADDR puts it), and Grafana is
// provisioned with it and the dashboard; both images are pinned.
func TestComposeMonitoring(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prometheus", "grafana"} {
		img := compose.Services[name].Image
		if _, tag, ok := strings.Cut(img, ":"); !ok || tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
			t.Errorf("%s's image %q is not pinned to a version", name, img)
		}
	}
	mounts := func(svc, from string) bool {
		for _, v := range compose.Services[svc].Volumes {
			if strings.HasPrefix(v, from+":") {
				return true
			}
		}
		return false
	}
	for svc, dir := range map[string]string{"prometheus": "./docker/prometheus/prometheus.yml",
		"grafana": "./docker/grafana/provisioning"} {
		if !mounts(svc, dir) {
			t.Errorf("%s does not mount %s", svc, dir)
		}
	}
	if !mounts("grafana", "./docker/grafana/dashboards") {
		t.Error("grafana does not mount the dashboards")
	}
	prom, err := os.ReadFile("../../docker/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(prom, &cfg); err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = true
			}
		}
	}
	for _, svc := range []string{"serve", "worker"} {
		addr := compose.Services[svc].Environment["COUNTERSIGN_METRICS_ADDR"]
		if addr == "" || !targets[svc+addr] {
			t.Errorf("prometheus does not scrape %s's metrics listener (%q); targets: %v", svc, addr, targets)
		}
	}
}
