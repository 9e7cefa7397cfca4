package alert

import (
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// ErrConfig is wrapped by every configuration validation error. Messages
// name the field but never echo a webhook URL or a password (they may hold
// tokens).
var ErrConfig = errors.New("alert: invalid config")

// WebhookKind selects a webhook's payload shape.
type WebhookKind string

// Webhook payload shapes.
const (
	// WebhookGeneric posts the alert as JSON: {"version", "kind", "title",
	// "text", "incident": Summary}.
	WebhookGeneric WebhookKind = "generic"
	// WebhookSlack posts a Slack-compatible incoming-webhook message:
	// {"text": ..., "blocks": [...]} (Block Kit; Mattermost and Rocket.Chat
	// accept the same "text").
	WebhookSlack WebhookKind = "slack"
)

// Config configures alerting. The zero value sends nothing; Default fills
// the tuning fields.
type Config struct {
	// Webhooks receive every alert as an HTTP POST.
	Webhooks []Webhook
	// SMTP, when not nil, sends every alert by e-mail.
	SMTP *SMTP
	// EscalationInterval is the least time between two alerts about one
	// incident once it is open (its "opened" alert counts); escalations in
	// between are coalesced into the next one (default 60 s).
	EscalationInterval time.Duration
	// EscalationsPerHour caps escalation alerts over all incidents in any
	// sliding hour (default 20); held-back changes go out with the next
	// allowed escalation or in the incident's "closed" alert.
	EscalationsPerHour int
	// QueueSize is each channel's queue capacity in alerts (default 64);
	// an alert that finds the queue full is dropped and counted.
	QueueSize int
	// MaxAttempts bounds delivery attempts per alert and channel
	// (default 5).
	MaxAttempts int
	// RetryBase is the wait after the first failed attempt; it doubles
	// after each further failure up to RetryMax (defaults 1 s and 1 min).
	RetryBase, RetryMax time.Duration
	// SendTimeout bounds one delivery attempt (default 10 s).
	SendTimeout time.Duration
	// Privacy bounds what alerts may say about traffic sources.
	Privacy Privacy
}

// Webhook is one HTTP endpoint.
type Webhook struct {
	// Name labels the channel in metrics and logs (default "<kind>-<index>").
	Name string
	// URL is the endpoint (http or https). It often embeds a token: it is
	// never logged nor put into errors.
	URL string
	// Kind is the payload shape (default generic).
	Kind WebhookKind
}

// SMTP is an e-mail channel (RFC 5321 submission).
type SMTP struct {
	// Host and Port of the submission server (Port default 587 with
	// StartTLS, 25 without).
	Host string
	Port int
	// Username enables SMTP AUTH (RFC 4954; the strongest mechanism the
	// server offers); empty sends unauthenticated.
	Username string
	// PasswordFile holds the password (one line; a trailing newline is
	// ignored). Required with Username. The password is never logged.
	PasswordFile string
	// From is the sender address; To the recipients (at least one).
	From string
	To   []string
	// StartTLS requires STARTTLS (RFC 3207) before anything else is sent;
	// without it mail goes in clear (a local relay).
	StartTLS bool
}

// Privacy says which sources an alert may name. Visits to a party's site can
// reveal political opinion (GDPR Art. 9): alerts carry vectors, figures,
// countries, ASNs and attacking prefixes only, never a visitor's address.
type Privacy struct {
	// MinPrefixCount and MinPrefixShare are the evidence threshold for
	// naming an attacking prefix: at least this many requests or packets
	// and this fraction of the incident's total (defaults 100 and 0.01,
	// the share report.DefaultMinShare uses, so an alert never names a
	// prefix the incident report withholds).
	MinPrefixCount uint64
	MinPrefixShare float64
	// Pseudonymise replaces every address and prefix shown with a keyed
	// pseudonym (HMAC-SHA-256, RFC 2104; Options.PseudonymKey), in the
	// report's format: "net-<12 hex>/<bits>", "host-<12 hex>".
	Pseudonymise bool
}

// Default returns c with unset tuning fields set to their defaults.
func (c Config) Default() Config {
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	num := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	dur(&c.EscalationInterval, time.Minute)
	num(&c.EscalationsPerHour, 20)
	num(&c.QueueSize, 64)
	num(&c.MaxAttempts, 5)
	dur(&c.RetryBase, time.Second)
	dur(&c.RetryMax, time.Minute)
	dur(&c.SendTimeout, 10*time.Second)
	if c.Privacy.MinPrefixCount == 0 {
		c.Privacy.MinPrefixCount = 100
	}
	if c.Privacy.MinPrefixShare == 0 {
		c.Privacy.MinPrefixShare = 0.01
	}
	c.Webhooks = append([]Webhook(nil), c.Webhooks...)
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		if w.Kind == "" {
			w.Kind = WebhookGeneric
		}
		if w.Name == "" {
			w.Name = fmt.Sprintf("%s-%d", w.Kind, i)
		}
	}
	if c.SMTP != nil {
		s := *c.SMTP
		if s.Port == 0 {
			s.Port = 25
			if s.StartTLS {
				s.Port = 587
			}
		}
		c.SMTP = &s
	}
	return c
}

// Validate checks a defaulted configuration. Errors wrap ErrConfig, name
// the field, and are joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, a...)))
	}
	if c.EscalationInterval < 0 {
		bad("escalation_interval", "%v must not be negative", c.EscalationInterval)
	}
	if c.EscalationsPerHour < 0 {
		bad("escalations_per_hour", "%d must not be negative", c.EscalationsPerHour)
	}
	if c.QueueSize < 1 || c.MaxAttempts < 1 {
		bad("queue_size/max_attempts", "must be ≥ 1")
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase || c.SendTimeout <= 0 {
		bad("retry_base/retry_max/send_timeout", "must be positive with retry_max ≥ retry_base")
	}
	if c.Privacy.MinPrefixShare < 0 || c.Privacy.MinPrefixShare > 1 {
		bad("privacy.min_prefix_share", "%v must be in [0, 1]", c.Privacy.MinPrefixShare)
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		field := fmt.Sprintf("webhooks[%d]", i)
		if w.Kind != WebhookGeneric && w.Kind != WebhookSlack {
			bad(field+".kind", "%q must be generic or slack", w.Kind)
		}
		// The URL is not echoed: it may carry a token.
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(field+".url", "must be an absolute http or https URL")
		}
		if names[w.Name] {
			bad(field+".name", "%q is used twice", w.Name)
		}
		names[w.Name] = true
	}
	if s := c.SMTP; s != nil {
		if s.Host == "" {
			bad("smtp.host", "is required")
		}
		if s.Port < 1 || s.Port > 65535 {
			bad("smtp.port", "%d must be in 1..65535", s.Port)
		}
		if _, err := mail.ParseAddress(s.From); err != nil {
			bad("smtp.from", "%q is not an e-mail address", s.From)
		}
		if len(s.To) == 0 {
			bad("smtp.to", "needs at least one recipient")
		}
		for i, to := range s.To {
			if _, err := mail.ParseAddress(to); err != nil {
				bad(fmt.Sprintf("smtp.to[%d]", i), "%q is not an e-mail address", to)
			}
		}
		if (s.Username == "") != (s.PasswordFile == "") {
			bad("smtp.username/password_file", "set both or neither")
		}
	}
	return errors.Join(errs...)
}

// LogValue implements slog.LogValuer: the configuration without secrets
// (webhook URLs shown as scheme and host only, no password file contents).
func (c Config) LogValue() slog.Value {
	var hooks []string
	for _, w := range c.Webhooks {
		hooks = append(hooks, w.Name+"="+string(w.Kind)+" "+redactURL(w.URL))
	}
	attrs := []slog.Attr{
		slog.String("webhooks", strings.Join(hooks, ", ")),
		slog.Duration("escalation_interval", c.EscalationInterval),
		slog.Int("escalations_per_hour", c.EscalationsPerHour),
		slog.Bool("pseudonymise", c.Privacy.Pseudonymise),
	}
	if s := c.SMTP; s != nil {
		attrs = append(attrs, slog.String("smtp", fmt.Sprintf("%s:%d starttls=%t auth=%t to=%d", s.Host, s.Port, s.StartTLS, s.Username != "", len(s.To))))
	}
	return slog.GroupValue(attrs...)
}

// redactURL keeps a URL's scheme and host: paths and queries of webhook URLs
// carry tokens.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[invalid url]"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
