package clientip

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// startShield serves HTTP on 127.0.0.1 behind ProxyListener; the handler
// resolves the client with r and answers "addr source".
func startShield(t *testing.T, r *Resolver) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln := ProxyListener(ln, r.Trusted, 2*time.Second)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			peer, ok := ParseAddr(req.RemoteAddr)
			if !ok {
				http.Error(w, "bad RemoteAddr "+req.RemoteAddr, http.StatusInternalServerError)
				return
			}
			res := r.Resolve(peer, req.Header)
			fmt.Fprintf(w, "%s %s", res.Addr, res.Source)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(pln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// v2Header returns a PROXY v2 header for a TCP connection from src.
func v2Header(t *testing.T, src string, cmd proxyproto.ProtocolVersionAndCommand) []byte {
	t.Helper()
	ap := netip.MustParseAddrPort(src)
	h := &proxyproto.Header{
		Version:           2,
		Command:           cmd,
		TransportProtocol: proxyproto.TCPv4,
		SourceAddr:        net.TCPAddrFromAddrPort(ap),
		DestinationAddr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443},
	}
	if ap.Addr().Is6() {
		h.TransportProtocol = proxyproto.TCPv6
		h.DestinationAddr = &net.TCPAddr{IP: net.IPv6loopback, Port: 443}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request dials addr from local (a 127.0.0.0/8 address), sends prefix, an
// HTTP request with extra header lines, and returns the body or the error.
func request(t *testing.T, addr, local string, prefix []byte, extra string) (string, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := append([]byte{}, prefix...)
	msg = append(msg, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"+extra+"\r\n"...)
	if _, err := c.Write(msg); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), err
}

// TestProxyListener sends PROXY v1 and v2 headers over real TCP connections
// from trusted (127.0.0.10) and untrusted (127.0.0.2) loopback addresses.
func TestProxyListener(t *testing.T) {
	r := mustResolver(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.10/32")}})
	addr := startShield(t, r)
	tests := []struct {
		name      string
		local     string
		prefix    []byte
		extra     string
		want      string // body; "" means the connection must fail
		wantClose bool
	}{
		{name: "trusted v1 header used", local: "127.0.0.10", prefix: []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40001 443\r\n"), want: "203.0.113.7 peer"},
		{name: "trusted v1 tcp6 header used", local: "127.0.0.10", prefix: []byte("PROXY TCP6 2001:db8::7 ::1 40001 443\r\n"), want: "2001:db8::7 peer"},
		{name: "trusted v2 header used", local: "127.0.0.10", prefix: v2Header(t, "198.51.100.9:5555", proxyproto.PROXY), want: "198.51.100.9 peer"},
		{name: "trusted v2 v6 header used", local: "127.0.0.10", prefix: v2Header(t, "[2001:db8::9]:5555", proxyproto.PROXY), want: "2001:db8::9 peer"},
		{name: "trusted v2 LOCAL keeps peer", local: "127.0.0.10", prefix: v2Header(t, "198.51.100.9:5555", proxyproto.LOCAL), want: "127.0.0.10 peer"},
		{name: "trusted v1 UNKNOWN keeps peer", local: "127.0.0.10", prefix: []byte("PROXY UNKNOWN\r\n"), want: "127.0.0.10 peer"},
		{name: "trusted without header", local: "127.0.0.10", want: "127.0.0.10 peer"},
		{name: "trusted without header uses XFF", local: "127.0.0.10", extra: "X-Forwarded-For: 198.51.100.9, 203.0.113.5\r\n", want: "203.0.113.5 X-Forwarded-For"},
		{
			name: "PROXY source is untrusted so spoofed XFF ignored", local: "127.0.0.10",
			prefix: []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40001 443\r\n"), extra: "X-Forwarded-For: 192.0.2.1\r\n",
			want: "203.0.113.7 peer",
		},
		{name: "untrusted without header", local: "127.0.0.2", want: "127.0.0.2 peer"},
		{name: "untrusted spoofed XFF ignored", local: "127.0.0.2", extra: "X-Forwarded-For: 203.0.113.5\r\n", want: "127.0.0.2 peer"},
		{name: "untrusted v1 header rejected", local: "127.0.0.2", prefix: []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40001 443\r\n"), wantClose: true},
		{name: "untrusted v2 header rejected", local: "127.0.0.2", prefix: v2Header(t, "203.0.113.7:1", proxyproto.PROXY), wantClose: true},
		{name: "trusted malformed v1 header fails", local: "127.0.0.10", prefix: []byte("PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n"), wantClose: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := request(t, addr, tt.local, tt.prefix, tt.extra)
			if tt.wantClose {
				if err == nil {
					t.Fatalf("connection served %q, want it closed", got)
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("err = %v, want the connection closed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if got != tt.want {
				t.Errorf("body = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestProxyListenerNilTrusted: with no trust function every header is refused.
func TestProxyListenerNilTrusted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln := ProxyListener(ln, nil, 0)
	defer pln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := pln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		_, err = c.Read(make([]byte, 16))
		if c.RemoteAddr().String() == "203.0.113.7:1" {
			err = errors.New("header source used")
		}
		errc <- err
	}()
	c, err := net.Dial("tcp", pln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 1 2\r\nGET")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) {
			t.Fatalf("Read error = %v, want ErrSuperfluousProxyHeader", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server side did not finish")
	}
	if !strings.HasPrefix(pln.Addr().String(), "127.0.0.1:") {
		t.Errorf("Addr() = %v", pln.Addr())
	}
}
