package alert

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"
)

// email sends alerts over SMTP (RFC 5321) with go-mail: a multipart/
// alternative message with a plain-text and an HTML body, one connection
// per alert.
type email struct {
	name     string
	cfg      SMTP
	password string // from cfg.PasswordFile; never logged
	tls      *tls.Config
	timeout  time.Duration
}

// newEmail reads the password file and returns the channel. tlsCfg (nil:
// system roots, server name = host) is used for STARTTLS.
func newEmail(cfg SMTP, tlsCfg *tls.Config, timeout time.Duration) (*email, error) {
	e := &email{name: "email", cfg: cfg, timeout: timeout}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			// The path is not secret; the contents are.
			return nil, fmt.Errorf("alert: smtp password_file: %w", err)
		}
		e.password = strings.TrimRight(string(b), "\r\n")
	}
	if tlsCfg != nil {
		e.tls = tlsCfg.Clone()
	} else {
		e.tls = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	return e, nil
}

// Name implements Channel.
func (e *email) Name() string { return e.name }

// Send implements Channel: subject "[Portcullis] " + Title, To all
// recipients, Auto-Submitted: auto-generated (RFC 3834). With StartTLS the
// session must be upgraded before authentication (mandatory policy); with a
// username the strongest mechanism the server offers is used (PLAIN and
// LOGIN only over TLS).
func (e *email) Send(ctx context.Context, a *Alert) error {
	m := mail.NewMsg()
	if err := m.From(e.cfg.From); err != nil {
		return fmt.Errorf("%w: alert: smtp from: %w", ErrPermanent, err)
	}
	if err := m.To(e.cfg.To...); err != nil {
		return fmt.Errorf("%w: alert: smtp to: %w", ErrPermanent, err)
	}
	m.Subject("[Portcullis] " + Title(a))
	m.SetDate()
	m.SetMessageID()
	m.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	m.SetBodyString(mail.TypeTextPlain, Text(a))
	h, err := HTML(a)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	m.AddAlternativeString(mail.TypeTextHTML, h)

	policy := mail.NoTLS
	if e.cfg.StartTLS {
		policy = mail.TLSMandatory
	}
	opts := []mail.Option{
		mail.WithPort(e.cfg.Port),
		mail.WithTimeout(e.timeout),
		mail.WithTLSPolicy(policy), // not WithTLSPortPolicy: it would move port 25 to 587,
		mail.WithTLSConfig(e.tls),
	}
	if e.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(e.cfg.Username), mail.WithPassword(e.password))
	}
	c, err := mail.NewClient(e.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("%w: alert: smtp client: %w", ErrPermanent, err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("alert: smtp %s:%d: %w", e.cfg.Host, e.cfg.Port, err)
	}
	return nil
}
