//go:build !(linux || darwin || freebsd)

package h1

// alive cannot peek here: an idle connection within its timeout is used.
func (c *conn) alive() bool { return true }
