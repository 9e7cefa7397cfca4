package alert

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfig checks defaults and validation; errors wrap ErrConfig, name
// the field and never quote a webhook URL.
func TestConfig(t *testing.T) {
	smtp := func(f func(*SMTP)) *SMTP {
		s := &SMTP{Host: "mail.party.example", From: "shield@party.example", To: []string{"ops@party.example"}}
		if f != nil {
			f(s)
		}
		return s
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings of the error; nil: valid
		check   func(t *testing.T, c Config)
	}{
		{"empty is valid and defaulted", Config{}, nil, func(t *testing.T, c Config) {
			if c.EscalationInterval != time.Minute || c.EscalationsPerHour != 20 || c.MaxAttempts != 5 || c.QueueSize != 64 || c.Privacy.MinPrefixCount != 100 {
				t.Errorf("defaults %+v", c)
			}
		}},
		{"webhook names and kinds defaulted", Config{Webhooks: []Webhook{{URL: "https://a.example/x"}, {URL: "https://b.example/y", Kind: WebhookSlack}}}, nil, func(t *testing.T, c Config) {
			if c.Webhooks[0].Name != "generic-0" || c.Webhooks[0].Kind != WebhookGeneric || c.Webhooks[1].Name != "slack-1" {
				t.Errorf("webhooks %+v", c.Webhooks)
			}
		}},
		{"smtp port follows starttls", Config{SMTP: smtp(func(s *SMTP) { s.StartTLS = true })}, nil, func(t *testing.T, c Config) {
			if c.SMTP.Port != 587 {
				t.Errorf("port %d, want 587", c.SMTP.Port)
			}
		}},
		{"smtp port 25 without starttls", Config{SMTP: smtp(nil)}, nil, func(t *testing.T, c Config) {
			if c.SMTP.Port != 25 {
				t.Errorf("port %d, want 25", c.SMTP.Port)
			}
		}},
		{"bad webhook url not echoed", Config{Webhooks: []Webhook{{URL: "ftp://hooks.example/SECRET"}}}, []string{"webhooks[0].url"}, nil},
		{"relative webhook url", Config{Webhooks: []Webhook{{URL: "/SECRET"}}}, []string{"webhooks[0].url"}, nil},
		{"bad webhook kind", Config{Webhooks: []Webhook{{URL: "https://a.example/", Kind: "teams"}}}, []string{"webhooks[0].kind"}, nil},
		{"duplicate names", Config{Webhooks: []Webhook{{Name: "x", URL: "https://a.example/"}, {Name: "x", URL: "https://b.example/"}}}, []string{"webhooks[1].name"}, nil},
		{"smtp without recipients", Config{SMTP: smtp(func(s *SMTP) { s.To = nil })}, []string{"smtp.to"}, nil},
		{"smtp bad from", Config{SMTP: smtp(func(s *SMTP) { s.From = "nobody" })}, []string{"smtp.from"}, nil},
		{"smtp username without password file", Config{SMTP: smtp(func(s *SMTP) { s.Username = "u" })}, []string{"smtp.username/password_file"}, nil},
		{"smtp bad port", Config{SMTP: smtp(func(s *SMTP) { s.Port = 70000 })}, []string{"smtp.port"}, nil},
		{"negative interval", Config{EscalationInterval: -time.Second}, []string{"escalation_interval"}, nil},
		{"retry max below base", Config{RetryBase: time.Minute, RetryMax: time.Second}, []string{"retry_base"}, nil},
		{"share above one", Config{Privacy: Privacy{MinPrefixShare: 2}}, []string{"privacy.min_prefix_share"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg.Default()
			err := c.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				tt.check(t, c)
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate: %v, want ErrConfig", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error quotes the URL: %v", err)
			}
		})
	}
}

// TestConfigSecrets checks that a logged configuration shows no webhook
// path or token, and that files are read by New (errors name the file, not
// its contents).
func TestConfigSecrets(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"logged without tokens", Config{Webhooks: []Webhook{{URL: "https://hooks.slack.example/services/T0/B0/SECRETTOKEN", Kind: WebhookSlack}},
			SMTP: &SMTP{Host: "mx.example", From: "a@b.example", To: []string{"c@d.example"}, Username: "u", PasswordFile: filepath.Join(dir, "pw")}}, ""},
		{"missing password file", Config{SMTP: &SMTP{Host: "mx.example", From: "a@b.example", To: []string{"c@d.example"}, Username: "u", PasswordFile: filepath.Join(dir, "absent")}}, "password_file"},
		{"short pseudonym key", Config{}, "shorter than 16 bytes"},
	}
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("SECRETPASSWORD\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			opts := Options{Logger: logs.logger()}
			if strings.Contains(tt.name, "key") {
				opts.PseudonymKey = []byte("tiny")
			}
			d, err := New(nil, tt.cfg, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: %v, want error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			logs.logger().Info("config", "alerts", d.cfg)
			out := logs.String() + fmt.Sprint(slog.AnyValue(d.cfg).Resolve())
			if !strings.Contains(out, "hooks.slack.example") {
				t.Errorf("logged config lacks the webhook host:\n%s", out)
			}
			for _, s := range []string{"SECRETTOKEN", "/services/", "SECRETPASSWORD"} {
				if strings.Contains(out, s) {
					t.Errorf("logged config contains %q:\n%s", s, out)
				}
			}
		})
	}
}
