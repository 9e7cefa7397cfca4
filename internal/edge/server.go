package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/portcullis/portcullis/internal/clientip"
)

// ListenerConfig is one client-facing listener.
type ListenerConfig struct {
	Address       string
	ProxyProtocol bool
	H2C           bool
	// TLS: CertFile+KeyFile, or ACME domains.
	CertFile, KeyFile string
	ACMEDomains       []string
	ACMEEmail, ACMECA string
	ACMEAgreed        bool
	// DataDir stores ACME certificates (under certs/).
	DataDir string
}

// ServerLimits are the listener-level hardening settings. They apply to a
// listener for its lifetime (a change needs a restart).
type ServerLimits struct {
	ReadHeaderTimeout      time.Duration
	IdleTimeout            time.Duration
	MaxHeaderBytes         int
	MaxConns               int
	MaxConnsPerClient      int
	H2MaxConcurrentStreams int
	// Trusted reports trusted proxies (PROXY protocol honoured, exempt from
	// the per-client connection cap).
	Trusted func(netip.Addr) bool
	// OnRefuse counts refused connections.
	OnRefuse func(peer netip.Addr, global bool)
	// Events, when set, receives connection events for accounting;
	// DefaultSite names the site they count on.
	Events      ConnEvents
	DefaultSite func() int
	// OnH2Error, when set, receives net/http's HTTP/2 error types
	// (http.HTTP2Config.CountError; Handler.NoteH2Error).
	OnH2Error func(errType string)
}

// Server is one listening socket serving the shield handler.
type Server struct {
	// Addr is the bound address (resolved port when ":0" was asked).
	Addr net.Addr
	// TLS reports whether the listener serves HTTPS.
	TLS bool

	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// Listen binds lc and prepares an http.Server with the hardened settings:
// ReadHeaderTimeout (slowloris), IdleTimeout, MaxHeaderBytes (also bounds
// HTTP/2 header blocks, so CONTINUATION floods are cut, CVE-2023-45288),
// HTTP/2 MaxConcurrentStreams (Go bounds running handlers per connection to
// it, CVE-2023-44487), connection caps, optional PROXY protocol and TLS.
// No ReadTimeout or WriteTimeout is set: they would cut SSE, WebSockets and
// large transfers; the handler enforces body-idle, minimum-rate and
// write-progress deadlines instead.
func Listen(ctx context.Context, lc ListenerConfig, lim ServerLimits, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return nil, fmt.Errorf("edge: listen %s: %w", lc.Address, err)
	}
	s := &Server{Addr: ln.Addr(), log: log}
	if lc.ProxyProtocol {
		trusted := lim.Trusted
		if trusted == nil {
			trusted = func(netip.Addr) bool { return false }
		}
		ln = clientip.ProxyListener(ln, trusted, lim.ReadHeaderTimeout)
	}
	ln = LimitListener(ln, ConnLimits{Max: lim.MaxConns, PerPeer: lim.MaxConnsPerClient, Exempt: lim.Trusted, OnRefuse: lim.OnRefuse})

	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: lim.H2MaxConcurrentStreams, MaxReadFrameSize: 16 << 10, CountError: lim.OnH2Error},
		ConnContext:       withConnInfo,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Protocols:         &protos,
	}
	if lim.Events != nil {
		site := lim.DefaultSite
		if site == nil {
			site = func() int { return 0 }
		}
		srv.ConnState = connState(lim.Events, site, lim.ReadHeaderTimeout)
	}
	switch {
	case lc.CertFile != "":
		cert, err := tls.LoadX509KeyPair(lc.CertFile, lc.KeyFile)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("edge: listener %s: %w", lc.Address, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	case len(lc.ACMEDomains) > 0:
		cfg := certmagic.NewDefault()
		cfg.Storage = &certmagic.FileStorage{Path: filepath.Join(lc.DataDir, "certs")}
		issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{CA: lc.ACMECA, Email: lc.ACMEEmail, Agreed: lc.ACMEAgreed})
		cfg.Issuers = []certmagic.Issuer{issuer}
		if err := cfg.ManageAsync(ctx, lc.ACMEDomains); err != nil {
			ln.Close()
			return nil, fmt.Errorf("edge: listener %s: acme: %w", lc.Address, err)
		}
		srv.TLSConfig = cfg.TLSConfig()
		srv.TLSConfig.NextProtos = append([]string{"h2", "http/1.1"}, srv.TLSConfig.NextProtos...)
		srv.TLSConfig.MinVersion = tls.VersionTLS12
	}
	if srv.TLSConfig != nil {
		protos.SetHTTP2(true)
		s.TLS = true
		ln = tls.NewListener(ln, srv.TLSConfig)
	} else if lc.H2C {
		protos.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &protos
	s.srv, s.ln = srv, ln
	return s, nil
}

// Serve serves until Shutdown; it returns nil after a graceful shutdown.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
