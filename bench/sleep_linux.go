package bench

import (
	"syscall"
	"time"
)

// preciseSleep sleeps d in the nanosleep system call. Go's timers wake
// through the network poller, whose epoll timeout has millisecond
// resolution: on this project's 2-vCPU reference VM a timer for a due
// time woke 0.58 ms late at the median and 1.16 ms at p99, more than the
// send-lag budget (p99 < 1 ms at 1,000 requests/s). A thread blocked in
// nanosleep is woken by a high-resolution timer: 0.14 ms and 0.29–1.0 ms.
// Only the last stretch before a send sleeps this way (see waitUntil), so
// the thread it holds is short-lived.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
