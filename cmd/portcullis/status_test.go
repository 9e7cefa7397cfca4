package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteStatus(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
		err  bool
	}{
		{
			name: "attack with incident, decisions and an origin down",
			doc: `{"version":"v1","time":"2026-11-29T21:00:00Z","sites":[{"name":"www","state":"attack",
				"origins":[{"url":"http://10.0.0.1:8080","healthy":false,"inflight":3,"concurrency_limit":40}],
				"requests":{"pass":120,"challenge":5000},"incident":"20261129T205959Z-www-1a2b",
				"open_incident":{"id":"20261129T205959Z-www-1a2b","site":"www","start":"2026-11-29T20:59:59Z","detected":"2026-11-29T21:00:00Z",
				"vectors":["http_flood"],"peak_rps":8123,"requests":40000,"sources":2100},
				"under_attack":true,"decisions":{"challenge":12,"block":1},"flash_crowd":false,"scores":{"rate":3.5}}]}`,
			want: []string{"site www: ATTACK (under-attack mode)", "incident 20261129T205959Z-www-1a2b since 20:59:59Z: http_flood; peak 8123 req/s, 40000 requests, ~2100 sources",
				"decisions: block 1, challenge 12", "requests since start: challenge 5000, pass 120", "rate 3.50", "http://10.0.0.1:8080", "DOWN"},
		},
		{
			name: "quiet site",
			doc:  `{"version":"v1","time":"2026-11-29T21:00:00Z","sites":[{"name":"shop","state":"normal","requests":{},"under_attack":false,"flash_crowd":false}]}`,
			want: []string{"site shop: NORMAL"},
		},
		{name: "not a status document", doc: `<html>proxy error</html>`, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := writeStatus(&out, []byte(tc.doc))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
