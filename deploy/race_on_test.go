//go:build race

package deploy

// raceEnabled: the tests run with -race, so the CLI is built with it too
// (sharing their compiled packages).
const raceEnabled = true
