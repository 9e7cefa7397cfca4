package app

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
)

// TestRefusalWithStalledBody (HANDED F15, slow POST): a request refused
// before its body is read — here by a deny rule — is answered at once and
// its connection closed, even when the client never sends the body it
// announced. Without that, net/http reads the unread body (up to 256 KiB)
// before writing the answer, and a stalled client holds the answer and the
// connection for ever.
func TestRefusalWithStalledBody(t *testing.T) {
	o := newOrigin(t)
	s := startShield(t, o, func(c *config.Config) {
		c.Sites[0].Rules.Deny = []config.Prefix{mustPrefix(t, "0.0.0.0/0"), mustPrefix(t, "::/0")}
	})
	tests := []struct {
		name string
		head string
	}{
		{name: "content-length, no body sent", head: "POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n\r\n"},
		{name: "chunked, one chunk then a stall", head: "POST /login HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tc.head)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer while the body stalls: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if !resp.Close && !strings.EqualFold(resp.Header.Get("Connection"), "close") {
				t.Errorf("connection kept open after refusing an unread body: %v", resp.Header)
			}
		})
	}
}
