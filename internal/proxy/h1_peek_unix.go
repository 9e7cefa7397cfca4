//go:build unix

package proxy

import "syscall"

// peek is idleOK's check (a syscall.RawConn.Read callback): one
// non-blocking recv with MSG_PEEK. EAGAIN means open and silent; data or
// end of stream mean the connection must not carry another exchange.
func (c *h1Conn) peek(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		c.peekOK = err == syscall.EAGAIN
		return true // never wait for readiness: this is a check
	}
}
