package gate

import (
	"net/http"
	"time"
)

// SetAfterFunc replaces the timers a gate renews holds with, so that a test
// runs renewals when it chooses.
func SetAfterFunc(rt http.RoundTripper, f func(d time.Duration, fn func()) (stop func() bool)) {
	rt.(*transport).afterFunc = f
}
