package alert

import (
	"context"
	"errors"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/detect"
	"github.com/portcullis/portcullis/internal/incident"
)

// TestRetry delivers one alert to a real HTTP receiver that fails in
// different ways, on synctest's clock: failed attempts are retried after
// RetryBase, 2×RetryBase, … up to MaxAttempts, permanent failures are not
// retried, and everything shows in the metrics. Failures are logged without
// the webhook URL's token.
func TestRetry(t *testing.T) {
	tests := []struct {
		name   string
		status func(n int) int // nil: no server (connection refused)
		// want: sent, failures, retries_exhausted, rejected, fake time to
		// the last attempt.
		sent, failures, exhausted, rejected float64
		last                                time.Duration
	}{
		{"two 503 then 200", func(n int) int { return []int{503, 503, 200}[min(n, 2)] }, 1, 2, 0, 0, 3 * time.Second},
		{"429 then 204", func(n int) int { return []int{429, 204}[min(n, 1)] }, 1, 1, 0, 0, time.Second},
		{"always 500: attempts bounded", func(int) int { return 500 }, 0, 4, 1, 0, 5 * time.Second},
		{"404 is permanent", func(int) int { return 404 }, 0, 1, 0, 1, 0},
		{"redirect not followed", func(int) int { return 302 }, 0, 1, 0, 1, 0},
		{"connection refused", nil, 0, 4, 1, 0, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var url string
			var rcv *receiver
			if tt.status != nil {
				rcv = newReceiver(t, tt.status)
				url = rcv.srv.URL
			} else {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				url = "http://" + l.Addr().String()
				l.Close()
			}
			url += "/services/T0/B0/SECRETTOKEN?key=SECRETKEY"
			var logs logBuffer
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				cfg := Config{Webhooks: []Webhook{{Name: "ops", URL: url}}, MaxAttempts: 4, RetryBase: time.Second, RetryMax: 2 * time.Second}
				d, err := New(nil, cfg, Options{Registerer: reg, Logger: logs.logger()})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { d.Run(ctx); close(done) }()
				start := time.Now()
				d.Open(context.Background(), fixture())
				var last time.Duration
				for {
					synctest.Wait()
					drops := counter(t, reg, "portcullis_alert_dropped_total", nil)
					if counter(t, reg, "portcullis_alert_sent_total", nil)+drops > 0 {
						last = time.Since(start)
						break
					}
					time.Sleep(100 * time.Millisecond) // fake time: lets the backoff timer fire
				}
				cancel()
				<-done
				if d := last - tt.last; d < 0 || d > 100*time.Millisecond {
					t.Errorf("last attempt after %v, want %v (backoff 1s, 2s, 2s…)", last, tt.last)
				}
				for _, c := range []struct {
					name   string
					labels map[string]string
					want   float64
				}{
					{"portcullis_alert_sent_total", map[string]string{"channel": "ops", "kind": "opened"}, tt.sent},
					{"portcullis_alert_failures_total", map[string]string{"channel": "ops"}, tt.failures},
					{"portcullis_alert_dropped_total", map[string]string{"reason": DropRetriesExhausted}, tt.exhausted},
					{"portcullis_alert_dropped_total", map[string]string{"reason": DropRejected}, tt.rejected},
				} {
					if got := counter(t, reg, c.name, c.labels); got != c.want {
						t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
					}
				}
			})
			if rcv != nil && float64(len(rcv.got())) != tt.failures+tt.sent {
				t.Errorf("receiver saw %d attempts, want %v", len(rcv.got()), tt.failures+tt.sent)
			}
			out := logs.String()
			if tt.failures > 0 && !strings.Contains(out, "channel=ops") {
				t.Errorf("failures not logged:\n%s", out)
			}
			for _, secret := range []string{"SECRETTOKEN", "SECRETKEY", "/services/"} {
				if strings.Contains(out, secret) {
					t.Errorf("log contains %q:\n%s", secret, out)
				}
			}
		})
	}
}

// TestNeverBlocks checks that Sink calls never wait for delivery (HANDED
// F12's class: a slow or dead dependency must not stall the control path):
// with no worker running, alerts beyond the queue are dropped and counted
// while every call returns at once. Inside a synctest bubble a blocked call
// would be a deadlock, which fails the test.
func TestNeverBlocks(t *testing.T) {
	tests := []struct {
		name      string
		queue     int
		incidents int
		wantQueue float64
		wantDrops float64
	}{
		{"queue holds all", 8, 5, 5, 0},
		{"queue full", 2, 5, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				d, err := New(&detect.MemorySink{}, Config{QueueSize: tt.queue, Webhooks: []Webhook{{URL: "http://127.0.0.1:9/never"}}}, Options{Registerer: reg})
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				for i := range tt.incidents {
					d.Open(context.Background(), withID(fixture(), string(rune('A'+i))))
				}
				if time.Since(start) != 0 {
					t.Errorf("Open calls took %v of fake time", time.Since(start))
				}
				if got := counter(t, reg, "portcullis_alert_queue_length", map[string]string{"channel": "generic-0"}); got != tt.wantQueue {
					t.Errorf("queue length %v, want %v", got, tt.wantQueue)
				}
				if got := counter(t, reg, "portcullis_alert_dropped_total", map[string]string{"reason": DropQueueFull}); got != tt.wantDrops {
					t.Errorf("dropped{queue_full} %v, want %v", got, tt.wantDrops)
				}
				// Shutting down counts what is still queued.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				d.Run(ctx)
				if got := counter(t, reg, "portcullis_alert_dropped_total", map[string]string{"reason": DropShutdown}); got != tt.wantQueue {
					t.Errorf("dropped{shutdown} %v, want %v", got, tt.wantQueue)
				}
			})
		})
	}
}

// errSink fails every call with err, recording the calls.
type errSink struct {
	detect.MemorySink
	err error
}

func (s *errSink) Open(ctx context.Context, in *incident.Incident) error {
	s.MemorySink.Open(ctx, in)
	return s.err
}

// TestForwards checks the decorator: every call reaches the wrapped sink
// (the SQLite-backed incident.Sink and a sink that fails) in order, its
// error is returned, and the alert is raised regardless.
func TestForwards(t *testing.T) {
	boom := errors.New("disk full")
	tests := []struct {
		name    string
		next    func() detect.Sink
		wantErr error
		check   func(t *testing.T, next detect.Sink)
	}{
		{"incident store", func() detect.Sink { return incident.Sink{B: incident.NewMemoryStore()} }, nil, func(t *testing.T, next detect.Sink) {
			got, err := next.(incident.Sink).B.Get(context.Background(), fixture().ID)
			if err != nil || got.Open() || !slices.Contains(got.Vectors, "distributed_flood") {
				t.Errorf("stored incident %+v, %v: want closed with both vectors", got, err)
			}
		}},
		{"failing sink", func() detect.Sink { return &errSink{err: boom} }, boom, func(t *testing.T, next detect.Sink) {
			id := fixture().ID
			want := []string{"open:" + id, "update:" + id, "close:" + id}
			if got := next.(*errSink).Calls(); !slices.Equal(got, want) {
				t.Errorf("calls %q, want %q", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := tt.next()
			reg := prometheus.NewRegistry()
			d, err := New(next, Config{Webhooks: []Webhook{{URL: "http://127.0.0.1:9/"}}}, Options{Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			in := fixture()
			if err := d.Open(ctx, in); !errors.Is(err, tt.wantErr) {
				t.Errorf("Open: %v, want %v", err, tt.wantErr)
			}
			if err := d.Update(ctx, escalated(in)); err != nil {
				t.Errorf("Update: %v", err)
			}
			if err := d.Close(ctx, closed(escalated(in))); err != nil {
				t.Errorf("Close: %v", err)
			}
			if got := counter(t, reg, "portcullis_alert_queue_length", nil); got != 2 {
				t.Errorf("queued %v alerts, want 2 (opened, closed: the escalation is within the interval)", got)
			}
			tt.check(t, next)
		})
	}
}

// TestMetricNames checks the registered series against the project's
// naming rule and that every series exists before anything happened.
func TestMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := New(nil, Config{Webhooks: []Webhook{{URL: "https://hooks.example/x", Kind: WebhookSlack}}, SMTP: &SMTP{Host: "mx.example", From: "a@b.example", To: []string{"c@d.example"}}}, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	re := regexp.MustCompile(`^portcullis_alert_[a-z_]+(_total|_length)$`)
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if !re.MatchString(mf.GetName()) {
			t.Errorf("metric name %q does not follow portcullis_alert_<name>_<unit>", mf.GetName())
		}
	}
	want := []string{"portcullis_alert_dropped_total", "portcullis_alert_failures_total", "portcullis_alert_queue_length", "portcullis_alert_sent_total"}
	if !slices.Equal(names, want) {
		t.Errorf("metrics %q, want %q", names, want)
	}
	if got := counter(t, reg, "portcullis_alert_sent_total", map[string]string{"channel": "email", "kind": "escalation"}); got != 0 {
		t.Errorf("sent{email,escalation} = %v", got)
	}
	if got := len(mfs[0].GetMetric()); got != len(dropReasons) {
		t.Errorf("%d dropped series, want one per reason (%d)", got, len(dropReasons))
	}
}
