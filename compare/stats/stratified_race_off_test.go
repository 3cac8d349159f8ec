//go:build !race

package stats

const raceStratified = false
