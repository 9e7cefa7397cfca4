package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/detect"
)

// lifecycle drives one incident through Open, an escalating Update after
// the escalation interval, and Close, inside a synctest bubble (time is
// fake: it moves only when every goroutine of the bubble is blocked, so a
// delivery's network round trip takes no fake time and every fake second
// that passes was waited for by the code under test). wait returns once
// the n-th alert has arrived. It returns the fake time each of the three
// alerts took to arrive.
func lifecycle(t *testing.T, d *Dispatcher, wait func(n int) bool) [3]time.Duration {
	t.Helper()
	ctx := context.Background()
	var took [3]time.Duration
	in := fixture()
	steps := []func(){
		func() { d.Open(ctx, in) },
		func() { d.Update(ctx, escalated(in)) },
		func() { d.Close(ctx, closed(escalated(in))) },
	}
	for i, step := range steps {
		if i == 1 {
			time.Sleep(d.cfg.EscalationInterval) // fake time: past the interval
		}
		start := time.Now()
		step()
		for !wait(i + 1) {
			synctest.Wait()
			if wait(i + 1) {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("alert %d not delivered after %v", i+1, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond) // fake time: let timers in the code under test fire
		}
		took[i] = time.Since(start)
	}
	return took
}

// TestWebhooks delivers an incident's three alerts to a real HTTP receiver,
// as generic JSON and as a Slack message, each within 1 s of the sink call
// (measured on synctest's clock), and checks that no visitor appears.
func TestWebhooks(t *testing.T) {
	tests := []struct {
		name  string
		kind  WebhookKind
		check func(t *testing.T, i int, body []byte)
	}{
		{"generic", WebhookGeneric, func(t *testing.T, i int, body []byte) {
			var p struct {
				Version  int    `json:"version"`
				Kind     Kind   `json:"kind"`
				Title    string `json:"title"`
				Changes  []string
				Incident struct {
					ID                string                 `json:"id"`
					Vectors           []string               `json:"vectors"`
					DurationSeconds   float64                `json:"duration_seconds"`
					AttackingPrefixes []struct{ Key string } `json:"attacking_prefixes"`
					TopCountries      []struct{ Key string } `json:"top_countries"`
				} `json:"incident"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body %d: %v", i, err)
			}
			want := []Kind{KindOpened, KindEscalation, KindClosed}[i]
			if p.Version != 1 || p.Kind != want || p.Incident.ID != fixture().ID || !strings.HasPrefix(p.Title, "Attack on www") {
				t.Errorf("body %d: version %d kind %q id %q title %q, want 1 %q", i, p.Version, p.Kind, p.Incident.ID, p.Title, want)
			}
			if len(p.Incident.AttackingPrefixes) != 1 || p.Incident.AttackingPrefixes[0].Key != "203.0.113.0/24" {
				t.Errorf("body %d: attacking prefixes %v, want only 203.0.113.0/24", i, p.Incident.AttackingPrefixes)
			}
			if len(p.Incident.TopCountries) == 0 || p.Incident.TopCountries[0].Key != "NL" {
				t.Errorf("body %d: countries %v", i, p.Incident.TopCountries)
			}
			switch want {
			case KindEscalation:
				joined := strings.Join(p.Changes, "\n")
				for _, w := range []string{"new vector: distributed_flood", "block address 203.0.113.7", "challenge address [address] for 1m0s"} {
					if !strings.Contains(joined, w) {
						t.Errorf("escalation changes %q lack %q", p.Changes, w)
					}
				}
			case KindClosed:
				if p.Incident.DurationSeconds != 300 {
					t.Errorf("closed duration %v s, want 300", p.Incident.DurationSeconds)
				}
			}
		}},
		{"slack", WebhookSlack, func(t *testing.T, i int, body []byte) {
			var p struct {
				Text   string `json:"text"`
				Blocks []struct {
					Type string `json:"type"`
					Text *struct {
						Type string `json:"type"`
						Text string `json:"text"`
					} `json:"text"`
					Fields []struct {
						Text string `json:"text"`
					} `json:"fields"`
				} `json:"blocks"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body %d: %v", i, err)
			}
			want := []string{"incident opened", "attack escalated", "incident closed after 5m0s"}[i]
			if !strings.Contains(p.Text, want) {
				t.Errorf("body %d: text %q lacks %q", i, p.Text, want)
			}
			if len(p.Blocks) < 3 || p.Blocks[0].Type != "header" || p.Blocks[0].Text == nil || p.Blocks[0].Text.Type != "plain_text" {
				t.Fatalf("body %d: blocks %s", i, body)
			}
			fields := 0
			for _, b := range p.Blocks {
				if len(b.Fields) > 10 {
					t.Errorf("body %d: section with %d fields (Slack allows 10)", i, len(b.Fields))
				}
				fields += len(b.Fields)
			}
			if fields == 0 || !strings.Contains(string(body), "203.0.113.0/24") {
				t.Errorf("body %d: no fields or no attacking prefix: %s", i, body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				cfg := Config{Webhooks: []Webhook{{URL: rcv.srv.URL + "/hook/T0KEN", Kind: tt.kind}}}
				d, err := New(&detect.MemorySink{}, cfg, Options{Registerer: reg})
				if err != nil {
					t.Fatal(err)
				}
				run(t, d)
				took := lifecycle(t, d, func(n int) bool { return len(rcv.got()) >= n })
				for i, dt := range took {
					if dt > time.Second {
						t.Errorf("alert %d left %v after the sink call, want ≤ 1s", i, dt)
					}
				}
				bodies := rcv.got()
				if len(bodies) != 3 {
					t.Fatalf("received %d alerts, want 3", len(bodies))
				}
				for i, b := range bodies {
					tt.check(t, i, b)
					assertNoVisitor(t, fmt.Sprintf("body %d", i), string(b))
				}
				name := string(tt.kind) + "-0"
				for _, k := range kinds {
					if got := counter(t, reg, "portcullis_alert_sent_total", map[string]string{"channel": name, "kind": string(k)}); got != 1 {
						t.Errorf("sent{%s,%s} = %v, want 1", name, k, got)
					}
				}
			})
		})
	}
}

// TestEmail delivers the three alerts to a real SMTP server (emersion/
// go-smtp) over STARTTLS with AUTH PLAIN and through a plain relay, and
// checks envelope, headers, both bodies and privacy.
func TestEmail(t *testing.T) {
	tests := []struct {
		name     string
		startTLS bool
		user     string
	}{
		{"starttls and auth", true, "alerts@party.example"},
		{"plain relay without auth", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const pass = "s3cret-Pa55"
			ms := newMailServer(t, tt.startTLS, tt.user, pass)
			smtpCfg := &SMTP{Host: "127.0.0.1", Port: int(ms.addr.Port()), From: "Portcullis <shield@party.example>",
				To: []string{"ops@party.example", "press@party.example"}, StartTLS: tt.startTLS}
			if tt.user != "" {
				smtpCfg.Username = tt.user
				smtpCfg.PasswordFile = filepath.Join(t.TempDir(), "pw")
				if err := os.WriteFile(smtpCfg.PasswordFile, []byte(pass+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var logs logBuffer
			synctest.Test(t, func(t *testing.T) {
				d, err := New(nil, Config{SMTP: smtpCfg}, Options{TLSConfig: ms.clientTL, Logger: logs.logger()})
				if err != nil {
					t.Fatal(err)
				}
				run(t, d)
				took := lifecycle(t, d, func(n int) bool { m, _ := ms.got(); return len(m) >= n })
				for i, dt := range took {
					if dt > time.Second {
						t.Errorf("e-mail %d left %v after the sink call, want ≤ 1s", i, dt)
					}
				}
			})
			if strings.Contains(logs.String(), pass) {
				t.Errorf("the SMTP password was logged:\n%s", logs.String())
			}
			msgs, authd := ms.got()
			if len(msgs) != 3 {
				t.Fatalf("received %d e-mails, want 3", len(msgs))
			}
			wantSubj := []string{"[Portcullis] Attack on www: incident opened (http_flood)",
				"[Portcullis] Attack on www: attack escalated (http_flood, distributed_flood)",
				"[Portcullis] Attack on www: incident closed after 5m0s (http_flood, distributed_flood)"}
			for i, m := range msgs {
				if m.from != "shield@party.example" || strings.Join(m.to, ",") != "ops@party.example,press@party.example" {
					t.Errorf("mail %d: envelope %q → %q", i, m.from, m.to)
				}
				if authd[i] != tt.user {
					t.Errorf("mail %d: authenticated as %q, want %q", i, authd[i], tt.user)
				}
				p := parseMail(t, m.data)
				if p.subject != wantSubj[i] {
					t.Errorf("mail %d: subject %q, want %q", i, p.subject, wantSubj[i])
				}
				if p.contentType != "multipart/alternative" || p.header.Get("Auto-Submitted") != "auto-generated" {
					t.Errorf("mail %d: content type %q, Auto-Submitted %q", i, p.contentType, p.header.Get("Auto-Submitted"))
				}
				for _, body := range []string{p.text, p.html} {
					for _, w := range []string{"20261129T210636Z-www-1a2b", "203.0.113.0/24", "NL 900000", "AS64500", "48210 req/s"} {
						if !strings.Contains(body, w) {
							t.Errorf("mail %d: body lacks %q:\n%s", i, w, body)
						}
					}
				}
				if !strings.Contains(p.html, "<table") || strings.Contains(p.text, "<table") {
					t.Errorf("mail %d: HTML part not HTML or text part not plain", i)
				}
				if i == 1 && !strings.Contains(p.text, "new vector: distributed_flood") {
					t.Errorf("escalation mail lacks the change:\n%s", p.text)
				}
				if i == 2 && !strings.Contains(p.text, "2026-11-29 21:11:36 UTC") {
					t.Errorf("closed mail lacks the end time:\n%s", p.text)
				}
				assertNoVisitor(t, fmt.Sprintf("mail %d", i), string(m.data)+p.text+p.html)
				if strings.Contains(string(m.data), pass) {
					t.Errorf("mail %d contains the SMTP password", i)
				}
			}
		})
	}
}
