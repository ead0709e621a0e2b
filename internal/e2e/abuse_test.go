package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The abuse-case suite (SPEC §8 "Trust model"): a table of attacker × attack,
// each run against a real deployment (PostgreSQL, Temporal, the API over
// HTTP). Each case asserts that the attack fails and that nothing changed.
// Cases live beside their area in abuse_<area>_test.go and register
// themselves from init; docs/security.md lists every one of them.

// abuseCase is one line of the table.
type abuseCase struct {
	Attacker string // who attacks: "admin of org A", "manager (custom manage)", "anyone reaching Temporal", ...
	Attack   string // what they try, in a few words
	Spec     string // the rule it breaks: "§8 Credentials", "§2 Invitation", ...
	Run      func(t *testing.T)
}

var abuseCases []abuseCase

func addAbuse(cases ...abuseCase) { abuseCases = append(abuseCases, cases...) }

func TestAbuse(t *testing.T) {
	if len(abuseCases) == 0 {
		t.Fatal("no abuse case registered")
	}
	for _, c := range abuseCases {
		// One at a time: every deployment of the package polls the same
		// task queue of one Temporal namespace, so parallel deployments
		// would take each other's workflow tasks.
		t.Run(c.Attacker+": "+c.Attack, c.Run)
	}
}

// TestAbuseTableDocumented keeps docs/security.md's table equal to the cases
// that run: every case is listed there, and nothing there is untested.
func TestAbuseTableDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	var missing []string
	rows := map[string]bool{}
	for _, c := range abuseCases {
		row := fmt.Sprintf("| %s | %s | %s |", c.Attacker, c.Attack, c.Spec)
		rows[row] = true
		if !strings.Contains(doc, row) {
			missing = append(missing, row)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/security.md lacks these rows of the abuse table:\n%s", strings.Join(missing, "\n"))
	}
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Count(line, " | ") == 2 && !strings.HasPrefix(line, "| attacker") && !rows[line] {
			t.Errorf("docs/security.md lists a case no test runs: %s", line)
		}
	}
}
