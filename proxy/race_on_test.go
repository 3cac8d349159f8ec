//go:build race

package proxy

// raceSlowdown scales timing assertions: the race detector slows code 5–20×.
const raceSlowdown = 10
