//go:build race

package stats

// raceStratified is true in a -race build: the stratified simulation skips
// itself there (make test runs it without -race).
const raceStratified = true
