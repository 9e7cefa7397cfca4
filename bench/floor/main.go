// Command floor is a calibration toy for bench/edge.sh --floor, NOT a proxy
// anyone should run: it shows how cheap a Go HTTP/1.1 reverse proxy can be on
// this machine when it skips work Portcullis must do (no hardening, no
// request smuggling checks, no hop-by-hop handling, no streaming, no
// accounting). It answers GET/HEAD-style requests without bodies only.
//
// Modes:
//
//	raw            goroutine per client connection, hand-parsed request head,
//	               synchronous pooled upstream connections (no net/http)
//	nethttp-sync   net/http server, the same synchronous upstream client
//	nethttp-rp     net/http server, httputil.ReverseProxy with a keep-alive
//	               http.Transport (the "naive" design)
//	fasthttp       fasthttp.Server, fasthttp.HostClient keep-alive upstream
//	               (see fast.go)
//	fasthttp-pipe  fasthttp.Server, fasthttp.PipelineClient upstream
//
// Every mode refuses with 403 a request whose X-Forwarded-For names the
// denied address (-deny) and otherwise proxies to -origin, adding
// X-Forwarded-For and X-Forwarded-Proto.
//
// Usage: floor -mode raw -listen 127.0.0.1:P -origin 127.0.0.1:O [-deny ADDR]
//
//	[-cpuprofile FILE -profile-after S -profile-for S]
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	mode := flag.String("mode", "raw", "raw | nethttp-sync | nethttp-rp | fasthttp | fasthttp-pipe")
	listen := flag.String("listen", "127.0.0.1:0", "loopback host:port")
	origin := flag.String("origin", "", "origin host:port")
	deny := flag.String("deny", "198.51.100.7", "address refused with 403 when named in X-Forwarded-For")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	profAfter := flag.Duration("profile-after", 2*time.Second, "start the CPU profile this long after start")
	profFor := flag.Duration("profile-for", 5*time.Second, "CPU profile duration")
	flag.Parse()
	if *cpuprofile != "" {
		go profile(*cpuprofile, *profAfter, *profFor)
	}
	f := &floor{origin: *origin, denied: *deny}
	f.denyResp = []byte("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: " +
		strconv.Itoa(len(denyBody)) + "\r\n\r\n" + denyBody)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	switch *mode {
	case "raw":
		for {
			c, err := ln.Accept()
			if err != nil {
				fmt.Fprintln(os.Stderr, "floor:", err)
				os.Exit(1)
			}
			go f.serveRaw(c)
		}
	case "nethttp-sync":
		err = http.Serve(ln, http.HandlerFunc(f.serveSync))
	case "nethttp-rp":
		u, _ := url.Parse("http://" + *origin)
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}
		err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !f.refuse(w, r) {
				rp.ServeHTTP(w, r)
			}
		}))
	case "fasthttp", "fasthttp-pipe":
		err = f.serveFast(ln, *mode == "fasthttp-pipe")
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}

// profile writes a CPU profile of the window [after, after+d) to path.
func profile(path string, after, d time.Duration) {
	time.Sleep(after)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return
	}
	time.Sleep(d)
	pprof.StopCPUProfile()
}

const denyBody = "403 access from your network is blocked\nrequest id: 0123456789ab\n"

type upstream struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

type floor struct {
	origin, denied string
	denyResp       []byte

	mu   sync.Mutex
	idle []*upstream
}

func (f *floor) get() (*upstream, error) {
	f.mu.Lock()
	if n := len(f.idle); n > 0 {
		u := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return u, nil
	}
	f.mu.Unlock()
	c, err := net.Dial("tcp", f.origin)
	if err != nil {
		return nil, err
	}
	return &upstream{c, bufio.NewReaderSize(c, 8<<10), bufio.NewWriterSize(c, 4<<10)}, nil
}

func (f *floor) put(u *upstream) { f.mu.Lock(); f.idle = append(f.idle, u); f.mu.Unlock() }

// serveRaw is the whole request loop of one client connection.
func (f *floor) serveRaw(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4<<10)
	bw := bufio.NewWriterSize(c, 4<<10)
	var head []byte
	xffKey := []byte("x-forwarded-for:")
	for {
		head = head[:0]
		denied := false
		for first := true; ; first = false {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 && !first {
				break
			}
			if len(line) > len(xffKey) && bytes.EqualFold(line[:len(xffKey)], xffKey) {
				denied = bytes.Contains(line, []byte(f.denied))
				continue // replaced below, as a proxy must
			}
			head = append(head, line...)
		}
		if denied {
			bw.Write(f.denyResp)
			if bw.Flush() != nil {
				return
			}
			continue
		}
		u, err := f.get()
		if err != nil {
			return
		}
		u.bw.Write(head)
		u.bw.WriteString("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n")
		if u.bw.Flush() != nil {
			u.c.Close()
			return
		}
		n := -1
		for {
			line, err := u.br.ReadSlice('\n')
			if err != nil {
				u.c.Close()
				return
			}
			bw.Write(line)
			if len(line) <= 2 {
				break
			}
			if len(line) > 15 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			}
		}
		if n > 0 {
			if _, err := io.CopyN(bw, u.br, int64(n)); err != nil {
				u.c.Close()
				return
			}
		}
		f.put(u)
		if bw.Flush() != nil {
			return
		}
	}
}

var (
	noStore = []string{"no-store"}
	ctText  = []string{"text/plain; charset=utf-8"}
	cl403   = []string{strconv.Itoa(len(denyBody))}
)

func (f *floor) refuse(w http.ResponseWriter, r *http.Request) bool {
	x := r.Header["X-Forwarded-For"]
	if len(x) == 0 || !strings.Contains(x[len(x)-1], f.denied) {
		return false
	}
	h := w.Header()
	h["Cache-Control"], h["Content-Type"], h["Content-Length"] = noStore, ctText, cl403
	w.WriteHeader(http.StatusForbidden)
	io.WriteString(w, denyBody)
	return true
}

// serveSync is a net/http handler with the synchronous upstream client.
func (f *floor) serveSync(w http.ResponseWriter, r *http.Request) {
	if f.refuse(w, r) {
		return
	}
	u, err := f.get()
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	bw := u.bw
	bw.WriteString(r.Method + " " + r.RequestURI + " HTTP/1.1\r\nHost: " + r.Host + "\r\n")
	for k, vs := range r.Header {
		if k == "X-Forwarded-For" {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k + ": " + v + "\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n")
	if bw.Flush() != nil {
		u.c.Close()
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	n, status := -1, 0
	h := w.Header()
	for first := true; ; first = false {
		line, err := u.br.ReadSlice('\n')
		if err != nil || (first && len(line) < 12) {
			u.c.Close()
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		if first {
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		k, v := http.CanonicalHeaderKey(string(line[:i])), string(bytes.TrimSpace(line[i+1:]))
		switch k {
		case "Content-Length":
			n, _ = strconv.Atoi(v)
		case "Connection", "Keep-Alive":
			continue
		}
		h[k] = append(h[k], v)
	}
	w.WriteHeader(status)
	if n > 0 {
		if _, err := io.CopyN(w, u.br, int64(n)); err != nil {
			u.c.Close()
			return
		}
	}
	f.put(u)
}
