package main

import (
	"bytes"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// fastDoer is what HostClient and PipelineClient have in common.
type fastDoer interface {
	Do(req *fasthttp.Request, resp *fasthttp.Response) error
}

// serveFast runs the fasthttp toy: a fasthttp.Server whose handler refuses
// the denied X-Forwarded-For with a pre-built 403 and otherwise forwards the
// request it was handed (no copy) through a keep-alive HostClient (or a
// PipelineClient when pipe is set), replacing X-Forwarded-For and adding
// X-Forwarded-Proto like the other modes.
func (f *floor) serveFast(ln net.Listener, pipe bool) error {
	var up fastDoer
	if pipe {
		up = &fasthttp.PipelineClient{Addr: f.origin, MaxConns: 4, MaxPendingRequests: 4096}
	} else {
		up = &fasthttp.HostClient{Addr: f.origin, MaxConns: 512, MaxIdleConnDuration: time.Minute}
	}
	denied := []byte(f.denied)
	body := []byte(denyBody)
	cl := strconv.Itoa(len(denyBody))
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			req := &ctx.Request
			if x := req.Header.Peek("X-Forwarded-For"); len(x) > 0 && bytes.Contains(x, denied) {
				ctx.Response.SetStatusCode(fasthttp.StatusForbidden)
				ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
				ctx.Response.Header.Set("Cache-Control", "no-store")
				ctx.Response.Header.Set("Content-Length", cl)
				ctx.Response.SetBodyRaw(body)
				return
			}
			req.Header.Set("X-Forwarded-For", "127.0.0.1")
			req.Header.Set("X-Forwarded-Proto", "http")
			if err := up.Do(req, &ctx.Response); err != nil {
				ctx.Response.Reset()
				ctx.SetStatusCode(fasthttp.StatusBadGateway)
			}
		},
		NoDefaultContentType: true,
		ReadTimeout:          30 * time.Second,
	}
	return srv.Serve(ln)
}
