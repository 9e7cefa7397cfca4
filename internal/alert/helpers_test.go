package alert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/incident"
)

// t0 is the fixture incident's start.
var t0 = time.Date(2026, 11, 29, 21, 6, 36, 0, time.UTC)

// Strings that identify legitimate visitors in the fixture: no alert may
// contain any of them.
var visitorStrings = []string{"198.51.100.23", "198.51.100.0", "2001:db8:beef::7", "/members/jane", "VisitorBrowser/1.0",
	"AS64510", "MEMBER-HOME-ISP", "AS64511", "VISITOR-MOBILE-NET"}

// fixture returns an open incident on site "www": an HTTP flood from
// 203.0.113.0/24 (attacking, well above the evidence threshold), with a
// visitor's /24 and path and user agent in the attribution lists, a
// member's and a visitor's ISP (27 requests each) among the ASNs, and a
// timeline whose free text names both an attacker and visitors.
func fixture() *incident.Incident {
	return &incident.Incident{
		ID: "20261129T210636Z-www-1a2b", Site: "www",
		Start: t0, Detected: t0.Add(2 * time.Second),
		Vectors: []string{"http_flood"},
		PeakRPS: 48210, Requests: 1_250_000, Sources: 812,
		TopCountries: []incident.Count{{Key: "NL", Count: 900_000}, {Key: "US", Count: 200_000}},
		TopASNs: []incident.Count{{Key: "AS64500", Count: 900_000, Name: "EXAMPLE-HOSTING"}, {Key: "AS64501", Count: 100_000},
			{Key: "AS64510", Count: 27, Name: "MEMBER-HOME-ISP"}, {Key: "AS64511", Count: 27, Name: "VISITOR-MOBILE-NET"}},
		TopPrefixes:   []incident.Count{{Key: "203.0.113.0/24", Count: 900_000}, {Key: "198.51.100.0/24", Count: 40}},
		TopPaths:      []incident.Count{{Key: "/members/jane", Count: 40}},
		TopUserAgents: []incident.Count{{Key: "VisitorBrowser/1.0", Count: 40}},
		Timeline: []incident.Event{
			{Time: t0, Kind: "state", From: incident.StateNormal, To: incident.StateSuspected, Message: "anomaly: http_flood"},
			{Time: t0.Add(2 * time.Second), Kind: "state", From: incident.StateSuspected, To: incident.StateAttack, Message: "attack confirmed: http_flood"},
			{Time: t0.Add(2 * time.Second), Kind: "note", Message: "visitor 198.51.100.23 solved a challenge"},
		},
	}
}

// escalated returns in with a new vector and two decisions: a block of an
// attacking address and a challenge of an address outside the attacking
// prefixes (a visitor: it must be redacted).
func escalated(in *incident.Incident) *incident.Incident {
	c := *in
	c.Vectors = append(append([]string(nil), in.Vectors...), "distributed_flood")
	c.Timeline = append(append([]incident.Event(nil), in.Timeline...),
		incident.Event{Time: t0.Add(30 * time.Second), Kind: "vector", Message: "new vector: distributed_flood"},
		incident.Event{Time: t0.Add(31 * time.Second), Kind: "decision", Message: "add block address 203.0.113.7 for 10m0s: heavy hitter (collateral: 0 known-good users; policy)"},
		incident.Event{Time: t0.Add(32 * time.Second), Kind: "decision", Message: "add challenge address 2001:db8:beef::7 for 1m0s: failed challenges (collateral: 0 known-good users; policy)"},
	)
	c.Requests += 500_000
	return &c
}

// closed returns in ended 5 minutes after its start.
func closed(in *incident.Incident) *incident.Incident {
	c := *in
	c.End = t0.Add(5 * time.Minute)
	return &c
}

// assertNoVisitor fails if s contains a visitor's address, path or agent.
func assertNoVisitor(t *testing.T, what, s string) {
	t.Helper()
	for _, v := range visitorStrings {
		if strings.Contains(s, v) {
			t.Errorf("%s contains visitor data %q:\n%s", what, v, s)
		}
	}
}

// receiver is a real HTTP webhook endpoint on loopback. status decides the
// answer to the n-th request (0-based); nil answers 204.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	status func(n int) int
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.bodies)
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		if req.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		code := http.StatusNoContent
		if r.status != nil {
			code = r.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// got returns the bodies received so far.
func (r *receiver) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// mailServer is a real SMTP server (emersion/go-smtp) on loopback that
// keeps every message, optionally with STARTTLS and AUTH PLAIN.
type mailServer struct {
	addr     netip.AddrPort
	clientTL *tls.Config // trusts the server's certificate
	user     string
	pass     string

	mu    sync.Mutex
	msgs  []received
	authd []string
}

type received struct {
	from string
	to   []string
	data []byte
}

type mailBackend struct{ s *mailServer }

func (b mailBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &mailSession{s: b.s}, nil
}

type mailSession struct {
	s    *mailServer
	from string
	to   []string
	user string
}

func (m *mailSession) AuthMechanisms() []string {
	if m.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (m *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != m.s.user || pass != m.s.pass {
			return errors.New("invalid credentials")
		}
		m.user = user
		return nil
	}), nil
}

func (m *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if m.s.user != "" && m.user == "" {
		return smtp.ErrAuthRequired
	}
	m.from = from
	return nil
}

func (m *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	m.to = append(m.to, to)
	return nil
}

func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	m.s.msgs = append(m.s.msgs, received{from: m.from, to: m.to, data: b})
	m.s.authd = append(m.s.authd, m.user)
	m.s.mu.Unlock()
	return nil
}

func (m *mailSession) Reset()        { m.from, m.to = "", nil }
func (m *mailSession) Logout() error { return nil }

// newMailServer starts the server; withTLS adds STARTTLS with a fresh
// self-signed certificate for 127.0.0.1, user/pass require AUTH.
func newMailServer(t *testing.T, withTLS bool, user, pass string) *mailServer {
	ms := &mailServer{user: user, pass: pass}
	s := smtp.NewServer(mailBackend{ms})
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.ErrorLog = nopLogger{}
	if withTLS {
		cert, pool := selfSigned(t)
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ms.clientTL = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = l.Addr().(*net.TCPAddr).AddrPort()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return ms
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func (ms *mailServer) got() ([]received, []string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.msgs...), append([]string(nil), ms.authd...)
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		// Valid from before synctest's fake epoch (2000) until long after.
		NotBefore: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// parsedMail is a received message with its decoded parts.
type parsedMail struct {
	header      netmail.Header
	subject     string
	text, html  string
	contentType string
}

// parseMail decodes a multipart/alternative message (quoted-printable or
// base64 parts).
func parseMail(t *testing.T, data []byte) parsedMail {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	var p parsedMail
	p.header = m.Header
	dec := new(mime.WordDecoder)
	if p.subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type: %v", err)
	}
	p.contentType = mt
	if !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("content type %q, want multipart/alternative", mt)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		var r io.Reader = part // multipart decodes quoted-printable itself
		if part.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			r = quotedprintable.NewReader(part)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("part body: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		}
	}
	return p
}

// counter reads a counter or gauge from reg ("" label values match any).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.GetCounter() != nil {
				sum += m.GetCounter().GetValue()
			} else {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// logBuffer is a concurrency-safe log sink for checking what was logged.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// run starts d.Run in the background until the test ends.
func run(t *testing.T, d *Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
