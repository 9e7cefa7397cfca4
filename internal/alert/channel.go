package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// ErrPermanent marks a delivery error that retrying cannot fix (a webhook
// answering 4xx other than 408 and 429, an alert that cannot be rendered):
// the dispatcher gives up on the alert at once.
var ErrPermanent = errors.New("alert: permanent delivery failure")

// Channel delivers alerts to one destination. Send is called from the
// channel's own worker goroutine, one alert at a time; its error must not
// contain secrets (webhook URLs, passwords) because it is logged.
type Channel interface {
	// Name labels the channel in metrics and logs.
	Name() string
	// Send delivers a before ctx ends; errors wrapping ErrPermanent are not
	// retried.
	Send(ctx context.Context, a *Alert) error
}

// webhook posts alerts as JSON (generic or Slack-shaped).
type webhook struct {
	name   string
	url    string
	kind   WebhookKind
	client *http.Client
}

// newHTTPClient returns the client webhooks use: no keep-alive (alerts are
// rare; no idle connection lingers), no redirects (the payload goes where it
// was configured to or nowhere), proxies from the environment, and tlsCfg
// (nil: system roots) for HTTPS.
func newHTTPClient(tlsCfg *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone()
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Name implements Channel.
func (w *webhook) Name() string { return w.name }

// Send implements Channel: a POST of the rendered alert; 2xx is success,
// 408, 429 and 5xx are retried, anything else is permanent.
func (w *webhook) Send(ctx context.Context, a *Alert) error {
	var body []byte
	var err error
	if w.kind == WebhookSlack {
		body, err = SlackJSON(a)
	} else {
		body, err = GenericJSON(a)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		// The error would quote the URL.
		return fmt.Errorf("%w: webhook %s: bad request URL", ErrPermanent, w.name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Portcullis-Alert/1")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("alert: webhook %s: %w", w.name, withoutURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("alert: webhook %s: status %d", w.name, c)
	default:
		return fmt.Errorf("%w: webhook %s: status %d", ErrPermanent, w.name, c)
	}
}

// withoutURL unwraps a *url.Error, whose message quotes the request URL
// (and so the webhook's token), keeping the operation and the cause.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("%s: timeout: %w", ue.Op, ue.Err)
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
