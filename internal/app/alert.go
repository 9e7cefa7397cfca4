package app

import (
	"github.com/portcullis/portcullis/internal/alert"
	"github.com/portcullis/portcullis/internal/config"
)

// alertConfig maps the YAML alert settings onto the alert package's.
func alertConfig(cfg *config.Config) alert.Config {
	a := cfg.Alerts
	out := alert.Config{
		EscalationInterval: a.EscalationInterval.D(),
		EscalationsPerHour: a.EscalationsPerHour,
		Privacy:            alert.Privacy{MinPrefixShare: a.MinPrefixShare, Pseudonymise: a.Pseudonymise},
	}
	for _, w := range a.Webhooks {
		out.Webhooks = append(out.Webhooks, alert.Webhook{Name: w.Name, URL: w.URL, Kind: alert.WebhookKind(w.Kind)})
	}
	if s := a.SMTP; s != nil {
		out.SMTP = &alert.SMTP{Host: s.Host, Port: s.Port, Username: s.Username, PasswordFile: s.PasswordFile, From: s.From, To: s.To, StartTLS: s.StartTLS}
	}
	return out.Default()
}
