//go:build race

package gridfs_test

// raceEnabled: the race detector changes what allocations cost and when
// they are freed, so heap measurements mean nothing under it; the
// ordinary test run makes them.
const raceEnabled = true
