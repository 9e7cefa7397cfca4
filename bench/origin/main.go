// Command origin is the benchmark origin for bench/edge.sh: a net/http
// server on loopback that answers every request with the same 1 KiB body
// (keep-alive, Content-Length set, no per-request allocation in the
// handler). It exists so that the proxies under test are compared in front
// of one fixed, cheap upstream; it is not part of Portcullis.
//
// Usage: origin -listen 127.0.0.1:PORT [-bytes 1024]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback host:port to serve on")
	size := flag.Int("bytes", 1024, "response body size in bytes")
	flag.Parse()

	body := bytes.Repeat([]byte("x"), *size)
	copy(body, "portcullis bench origin\n")
	body[len(body)-1] = '\n'
	clen := []string{strconv.Itoa(len(body))}
	ctype := []string{"text/plain; charset=utf-8"}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "origin:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Length"] = clen
			h["Content-Type"] = ctype
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Fatal(srv.Serve(ln))
}
