//go:build race

package node_test

// raceDetector: the tests run with -race, about five times slower; the
// large-value tests write 4 MiB instead of 20 (still many parts).
const raceDetector = true
