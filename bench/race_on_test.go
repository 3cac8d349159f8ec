//go:build race

package bench

const raceSlowdown = 5

// raceEnabled: timing assertions skip under -race (make test runs them
// again without it).
const raceEnabled = true
