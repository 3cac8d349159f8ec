//go:build !linux

package bench

import "time"

// preciseSleep is time.Sleep where nanosleep is not used (see sleep_linux.go).
func preciseSleep(d time.Duration) { time.Sleep(d) }
