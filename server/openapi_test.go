package server_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/countersign/countersign/server"
)

// documentedNotRouted lists the operations openapi.yaml describes ahead of
// their handlers. Delete each entry when its route lands: the test fails
// while a routed operation is still listed here.
var documentedNotRouted = []string{}

// documentedOperations reads "METHOD /path" for every operation under the
// document's top-level paths: (paths at two spaces, methods at four).
func documentedOperations(t *testing.T, doc []byte) []string {
	t.Helper()
	var ops []string
	pathRE := regexp.MustCompile(`^  (/\S*):\s*$`)
	methodRE := regexp.MustCompile(`^    (get|put|post|patch|delete|head|options):\s*$`)
	in, path := false, ""
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			in = true
		case in && len(line) > 0 && line[0] != ' ' && line[0] != '#':
			in = false
		case !in:
		case pathRE.MatchString(line):
			path = pathRE.FindStringSubmatch(line)[1]
		case methodRE.MatchString(line):
			if path == "" {
				t.Fatalf("method outside a path: %q", line)
			}
			ops = append(ops, strings.ToUpper(methodRE.FindStringSubmatch(line)[1])+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	s := server.New(server.Deps{Logger: slog.New(slog.DiscardHandler)})
	documented := documentedOperations(t, server.OpenAPI)
	if len(documented) < 30 {
		t.Fatalf("only %d operations read from openapi.yaml: %v", len(documented), documented)
	}
	param := regexp.MustCompile(`:(\w+)`)
	var routed []string
	for _, r := range s.Routes() {
		routed = append(routed, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	slices.Sort(routed)
	for _, op := range routed {
		if !slices.Contains(documented, op) {
			t.Errorf("%s is routed but not in openapi.yaml", op)
		}
		if slices.Contains(documentedNotRouted, op) {
			t.Errorf("%s is routed now: remove it from documentedNotRouted", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(routed, op) && !slices.Contains(documentedNotRouted, op) {
			t.Errorf("%s is in openapi.yaml but not routed", op)
		}
	}
	for _, op := range documentedNotRouted {
		if !slices.Contains(documented, op) {
			t.Errorf("%s is listed as documented but openapi.yaml does not have it", op)
		}
	}

	// It is served as is.
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") ||
		!bytes.Equal(body, server.OpenAPI) || !bytes.HasPrefix(body, []byte("openapi: 3.")) {
		t.Fatalf("GET /openapi.yaml: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
