package alert

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
)

// BenchmarkSinkCalls measures what the dispatcher adds to the detection
// engine's Sink calls (no delivery: the worker is not running and queues
// stay short because the policy raises few alerts).
func BenchmarkSinkCalls(b *testing.B) {
	ctx := context.Background()
	b.Run("update_unchanged", func(b *testing.B) {
		d, err := New(&detect.MemorySink{}, Config{Webhooks: []Webhook{{URL: "http://127.0.0.1:9/"}}}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		in := fixture()
		d.Open(ctx, in)
		b.ReportAllocs()
		for b.Loop() {
			d.Update(ctx, in)
		}
	})
	b.Run("open_close", func(b *testing.B) {
		now := t0
		d, err := New(nil, Config{QueueSize: 1, Webhooks: []Webhook{{URL: "http://127.0.0.1:9/"}}}, Options{Now: func() time.Time { return now }})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			in := withID(fixture(), fmt.Sprint(i))
			d.Open(ctx, in)
			d.Close(ctx, closed(in))
			now = now.Add(time.Minute)
			i++
		}
	})
}

// BenchmarkScrub measures redaction of one decision message.
func BenchmarkScrub(b *testing.B) {
	p := &privacy{key: testKey}
	allowed := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	msg := "escalate challenge → block address 198.51.100.23 for 10m0s: heavy hitter (collateral: 0 known-good users; policy)"
	b.ReportAllocs()
	for b.Loop() {
		p.scrub(msg, allowed, "www")
	}
}
