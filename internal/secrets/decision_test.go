package secrets

import (
	"bytes"
	"testing"

	cs "github.com/countersign/countersign"
)

func TestDecisionSigner(t *testing.T) {
	s, err := NewDecisionSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	d := cs.DecisionSignal{PostID: "p", Revision: 2, Step: 1, MemberID: "m", Decision: "approve", Source: "api", RequestID: "r"}
	if s.Verify(d) {
		t.Fatal("an unsigned decision verified")
	}
	d.MAC = s.Sign(d)
	if !s.Verify(d) {
		t.Fatal("a signed decision did not verify")
	}
	for name, change := range map[string]func(*cs.DecisionSignal){
		"member":   func(d *cs.DecisionSignal) { d.MemberID = "other" },
		"decision": func(d *cs.DecisionSignal) { d.Decision = "reject" },
		"step":     func(d *cs.DecisionSignal) { d.Step = 2 },
		"revision": func(d *cs.DecisionSignal) { d.Revision = 3 },
		"behalf":   func(d *cs.DecisionSignal) { d.OnBehalfOf = "x" },
		"external": func(d *cs.DecisionSignal) { d.External = "x@example.com" },
	} {
		c := d
		change(&c)
		if s.Verify(c) {
			t.Errorf("changing the %s kept the MAC valid", name)
		}
	}
	other, _ := NewDecisionSigner(bytes.Repeat([]byte{8}, 32))
	if other.Verify(d) {
		t.Error("another key verified the MAC")
	}
}
