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
