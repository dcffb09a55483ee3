//go:build !race

package gridfs_test

const raceEnabled = false
