package systemtest

import (
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Staff on node 0 deactivate a user whose socket is open on node 1: it
// closes with 4001 "account disabled" (the event crosses through Redis),
// and every node refuses the user's token with account_disabled. Staff
// are made by the command line, on the shared Postgres database, while
// the nodes run.
func TestMultiNode_DeactivationClosesSocketsOnEveryNode(t *testing.T) {
	c := startCluster(t, 2)
	mod := c.register("mod_x", 0)
	bob := c.register("bob_x", 1)

	grant := exec.Command(c.bin, "staff", "grant", mod.name)
	grant.Env = append(os.Environ(), c.env...)
	if out, err := grant.CombinedOutput(); err != nil || !strings.Contains(string(out), "is now staff") {
		t.Fatalf("confab staff grant: %v: %s", err, out)
	}

	// bob's socket on node 1, its setup over before the deactivation.
	done := watchClose(t, c.nodes[1].URL, bob.access)

	if code, m := c.nodes[0].Call(t, http.MethodPost, "/api/admin/users/"+strconv.FormatInt(bob.id, 10)+"/deactivate/", mod.access,
		map[string]string{"reason": "spam on every node"}); code != http.StatusOK || m["is_active"] != false {
		t.Fatalf("deactivate on node 0: %d %v", code, m)
	}
	select {
	case got := <-done:
		if got.code != 4001 || got.reason != "account disabled" {
			t.Errorf("bob's socket on node 1 closed with %d %q, want 4001 \"account disabled\"", got.code, got.reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bob's socket on node 1 is still open 10 s after the deactivation on node 0")
	}
	for i, p := range c.nodes {
		if code, m := p.Call(t, http.MethodGet, "/api/users/me/", bob.access, nil); code != http.StatusUnauthorized || m["code"] != "account_disabled" {
			t.Errorf("bob's access token on node %d: %d %v, want 401 account_disabled", i, code, m)
		}
	}
}
