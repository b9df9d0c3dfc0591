//go:build !race

package storetest

// RaceEnabled reports whether the race detector is on, which makes stores
// many times slower: tests that run many operations do fewer then.
const RaceEnabled = false
