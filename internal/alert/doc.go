// Package alert tells staff about incidents: a detect.Sink decorator
// (Dispatcher) that forwards every call to the incident store and raises an
// alert when an incident opens, escalates (new vector, new or stronger
// decision, attack resumed) and closes, delivered asynchronously to generic
// JSON webhooks, Slack-compatible webhooks and e-mail over SMTP.
//
// Alerts are deduplicated (one opened and one closed alert per incident)
// and rate-limited (escalations coalesced per incident and capped per hour)
// so that a long attack does not flood the staff; failed deliveries are
// retried with exponential backoff and counted in metrics. Alerts carry
// vectors, figures, countries, ASNs and attacking prefixes above an
// evidence threshold only — never a visitor's address (GDPR Art. 9: a visit
// to a party's site can reveal political opinion) — and secrets (SMTP
// password, webhook URLs) are never logged.
package alert
