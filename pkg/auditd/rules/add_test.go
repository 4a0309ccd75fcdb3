package rules

import (
	"errors"
	"syscall"
	"testing"

	libaudit "github.com/elastic/go-libaudit/v2"

	"github.com/dockward/dockward/internal/testenv"
)

// Adding a rule the kernel already holds is ErrExists (and EEXIST) for
// errors.Is, from the real go-libaudit answer; other errors pass through.
func TestAddTellsAnExistingRule(t *testing.T) {
	testenv.RequireRoot(t)
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		testenv.Missing(t, "kernel audit netlink: %v", err)
		return
	}
	t.Cleanup(func() { ctl.Close() }) // after the rule's removal below
	testenv.LockKernelAudit(t)
	wire := mustBuild(t, Watch{Path: t.TempDir(), Key: "dockward_test_exists"})
	if err := Add(ctl, wire); err != nil {
		t.Fatalf("adding a new rule: %v", err)
	}
	t.Cleanup(func() {
		if err := ctl.DeleteRule(wire); err != nil {
			t.Errorf("removing the test rule: %v", err)
		}
	})
	err = Add(ctl, wire)
	if !errors.Is(err, ErrExists) || !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("adding the same rule again = %v, want ErrExists wrapping EEXIST", err)
	}
	other := errors.New("error adding audit rule: operation not permitted")
	if got := addError(other); got != other || errors.Is(got, ErrExists) {
		t.Errorf("addError(%v) = %v, want it unchanged", other, got)
	}
}
