// Package failpoints switches on, for one test, the failpoints
// (github.com/pingcap/failpoint) that plant bugs for the sabotage tests. It
// only has an effect in a build whose failpoint markers were rewritten
// (`make test-sabotage`); in every other build the markers are inert.
package failpoints

import (
	"testing"

	"github.com/pingcap/failpoint"
)

// Module is the import path every failpoint name starts with.
const Module = "github.com/blossom-dso/blossom/"

// Enable turns on the failpoint name of the package pkg (its path below
// the module, e.g. "protocols/paxos") with the term "return(true)" until
// the test ends. A failpoint that cannot be enabled or disabled fails the
// test.
func Enable(t testing.TB, pkg, name string) {
	t.Helper()
	fp := Module + pkg + "/" + name
	if err := failpoint.Enable(fp, "return(true)"); err != nil {
		t.Fatalf("enable failpoint %s: %v", fp, err)
	}
	t.Cleanup(func() {
		if err := failpoint.Disable(fp); err != nil {
			t.Errorf("disable failpoint %s: %v", fp, err)
		}
	})
}
