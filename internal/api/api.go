// Package api is the admin HTTP surface: /healthz (unauthenticated, for
// load balancers), /metrics (Prometheus) and /api/v1/* (JSON). Everything
// but /healthz requires "Authorization: Bearer TOKEN" when a token is
// configured; the token is compared in constant time and never logged.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the admin handler.
type Options struct {
	// Token is the bearer token; "" disables authentication (the app warns
	// loudly and config validation allows it only on loopback).
	Token string
	// Registry is scraped by /metrics.
	Registry *prometheus.Registry
	// Status returns the /api/v1/status document.
	Status func() any
	// Logger logs refused requests (never the token).
	Logger *slog.Logger
	// Routes are further authenticated endpoints (operator verbs).
	Routes []Route
}

// Route is one extra authenticated admin endpoint.
type Route struct {
	// Pattern is a net/http ServeMux pattern ("POST /api/v1/decisions").
	Pattern string
	Handler http.Handler
}

// New returns the admin handler.
func New(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", o.auth(promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})))
	mux.Handle("GET /api/v1/status", o.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, o.Status())
	})))
	for _, rt := range o.Routes {
		mux.Handle(rt.Pattern, o.auth(rt.Handler))
	}
	return mux
}

func (o Options) auth(next http.Handler) http.Handler {
	if o.Token == "" {
		return next
	}
	want := []byte("Bearer " + o.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			if o.Logger != nil {
				o.Logger.Warn("admin request refused: missing or wrong token", "path", r.URL.Path, "peer", strings.Split(r.RemoteAddr, ":")[0])
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis"`)
			WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized: send Authorization: Bearer <admin token>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteJSON writes v as indented JSON with the status code.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
