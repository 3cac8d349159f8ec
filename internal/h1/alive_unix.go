//go:build linux || darwin || freebsd

package h1

import "syscall"

// alive reports whether an idle connection is still open, with one
// non-blocking peek: nothing to read means open; end of stream or an
// error means the server has closed it. Bytes waiting on a plain
// connection are an answer nobody asked for, so it is not reused; on TLS
// they may be a session ticket, which the next read handles.
func (c *conn) alive() bool {
	sc, ok := c.raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			open = true
		case err == nil && n > 0:
			open = c.tls
		}
		return true // never wait
	})
	return err == nil && open
}
