//go:build !race

package bench

const raceSlowdown = 1

const raceEnabled = false
