package outbox

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: the worker,
// the sender's connections and the sinks must all shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
