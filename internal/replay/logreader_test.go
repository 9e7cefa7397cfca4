package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/stats"
)

const (
	sharedData    = "../../../shared/data"
	apacheLogs    = sharedData + "/elastic-examples-apache/apache_logs"
	fail2banDir   = sharedData + "/fail2ban-http-logs"
	apacheFixture = "../../testdata/replay/apache_combined_300.log"
	fixtureASN    = "../../testdata/geo/asn-sample.csv"
)

func requireShared(t testing.TB, name string) {
	t.Helper()
	if _, err := os.Stat(name); err != nil {
		t.Skipf("shared data %s absent (tests read it from ../shared/data at test time): %v", name, err)
	}
}

func ts(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

// want is the subset of stats.Request a parse test checks.
type want struct {
	Time      int64
	Addr      string
	Prefix    string
	Method    string
	Path      string
	Query     string
	UserAgent string
	Referer   bool
	Status    int
	Bytes     int64
	Latency   time.Duration
}

func got(r *stats.Request) want {
	w := want{Time: r.Time, Method: r.Method, Path: r.Path, Query: r.Query,
		UserAgent: r.UserAgent, Referer: r.Referer, Status: r.Status, Bytes: r.Bytes, Latency: r.OriginLatency}
	if r.Addr.IsValid() {
		w.Addr = r.Addr.String()
	}
	if r.Prefix.IsValid() {
		w.Prefix = r.Prefix.String()
	}
	return w
}

func TestParseCLF(t *testing.T) {
	tests := []struct {
		name         string
		line         string
		want         want
		wantCombined bool
		wantReason   string
	}{
		{
			name:         "apache combined",
			line:         `83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh)"`,
			want:         want{Time: ts("2015-05-17T10:05:03Z"), Addr: "83.149.9.216", Prefix: "83.149.9.0/24", Method: "GET", Path: "/presentations/logstash-monitorama-2013/images/kibana-search.png", UserAgent: "Mozilla/5.0 (Macintosh)", Referer: true, Status: 200, Bytes: 203023},
			wantCombined: true,
		},
		{
			name: "common with query and dash bytes",
			line: `10.1.2.3 - frank [10/Oct/2000:13:55:36 -0700] "GET /search?q=a%20b&page=2 HTTP/1.0" 304 -`,
			want: want{Time: ts("2000-10-10T20:55:36Z"), Addr: "10.1.2.3", Prefix: "10.1.2.0/24", Method: "GET", Path: "/search", Query: "q=a%20b&page=2", Status: 304},
		},
		{
			name:         "ipv6 client gets /64",
			line:         `2001:db8:1:2:3:4:5:6 - - [01/Jan/2026:00:00:00 +0000] "POST /login HTTP/2.0" 401 12 "-" "curl/8.0"`,
			want:         want{Time: ts("2026-01-01T00:00:00Z"), Addr: "2001:db8:1:2:3:4:5:6", Prefix: "2001:db8:1:2::/64", Method: "POST", Path: "/login", UserAgent: "curl/8.0", Status: 401, Bytes: 12},
			wantCombined: true,
		},
		{
			name:         "ipv4-mapped client is unmapped",
			line:         `::ffff:192.0.2.7 - - [01/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "-"`,
			want:         want{Time: ts("2026-01-01T00:00:01Z"), Addr: "192.0.2.7", Prefix: "192.0.2.0/24", Method: "GET", Path: "/", Status: 200, Bytes: 5},
			wantCombined: true,
		},
		{
			name:         "escaped quotes in request and user agent",
			line:         `192.0.2.1 - - [01/Jan/2026:00:00:02 +0100] "GET /a\"b HTTP/1.1" 404 0 "-" "Mozilla \"quoted\" agent" "198.51.100.9"`,
			want:         want{Time: ts("2025-12-31T23:00:02Z"), Addr: "192.0.2.1", Prefix: "192.0.2.0/24", Method: "GET", Path: `/a\"b`, UserAgent: `Mozilla \"quoted\" agent`, Status: 404},
			wantCombined: true,
		},
		{
			name:         "nginx empty request is kept with no method",
			line:         `12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "" 400 47 "-" "-" "-"`,
			want:         want{Time: ts("2015-01-20T18:53:28Z"), Addr: "12.34.56.78", Prefix: "12.34.56.0/24", Status: 400, Bytes: 47},
			wantCombined: true,
		},
		{
			name:         "binary garbage request is kept with no method",
			line:         `12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "\x03\x00\x00/*\xE0\x00\x00\x00\x00\x00Cookie: mstshash=Administr" 400 47 "-" "-" "-"`,
			want:         want{Time: ts("2015-01-20T18:53:28Z"), Addr: "12.34.56.78", Prefix: "12.34.56.0/24", Status: 400, Bytes: 47},
			wantCombined: true,
		},
		{
			name:         "absolute-form target reduced to path",
			line:         `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET http://example.org/x?y=1 HTTP/1.1" 200 1 "-" "ua"`,
			want:         want{Time: ts("2026-01-01T00:00:00Z"), Addr: "192.0.2.1", Prefix: "192.0.2.0/24", Method: "GET", Path: "/x", Query: "y=1", UserAgent: "ua", Status: 200, Bytes: 1},
			wantCombined: true,
		},
		{
			name:         "http/0.9 request line",
			line:         `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET /old" 200 1`,
			want:         want{Time: ts("2026-01-01T00:00:00Z"), Addr: "192.0.2.1", Prefix: "192.0.2.0/24", Method: "GET", Path: "/old", Status: 200, Bytes: 1},
			wantCombined: false,
		},
		{
			name:         "vhost_combined leading vhost",
			line:         `www.example.org:443 203.0.113.5 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 10 "-" "ua"`,
			want:         want{Time: ts("2026-01-01T00:00:00Z"), Addr: "203.0.113.5", Prefix: "203.0.113.0/24", Method: "GET", Path: "/", UserAgent: "ua", Status: 200, Bytes: 10},
			wantCombined: true,
		},
		{
			name:         "fractional seconds",
			line:         `192.0.2.1 - - [01/Jan/2026:00:00:00.250 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"`,
			want:         want{Time: ts("2026-01-01T00:00:00.25Z"), Addr: "192.0.2.1", Prefix: "192.0.2.0/24", Method: "GET", Path: "/", UserAgent: "ua", Status: 200, Bytes: 1},
			wantCombined: true,
		},
		{name: "hostname instead of address", line: `crawl.example.com - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1`, wantReason: reasonAddr},
		{name: "nginx error log line", line: `2015/10/29 20:01:02 [error] 256554#0: *99927 limiting requests, excess: 1.852 by zone "one", client: 1.2.3.4`, wantReason: reasonAddr},
		{name: "missing timestamp", line: `192.0.2.1 - - "GET / HTTP/1.1" 200 1`, wantReason: reasonTimestamp},
		{name: "bad month", line: `192.0.2.1 - - [01/Foo/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1`, wantReason: reasonTimestamp},
		{name: "31 April", line: `192.0.2.1 - - [31/Apr/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1`, wantReason: reasonTimestamp},
		{name: "hour 24", line: `192.0.2.1 - - [01/Jan/2026:24:00:00 +0000] "GET / HTTP/1.1" 200 1`, wantReason: reasonTimestamp},
		{name: "missing zone", line: `192.0.2.1 - - [01/Jan/2026:00:00:00] "GET / HTTP/1.1" 200 1`, wantReason: reasonTimestamp},
		{name: "unterminated request", line: `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1 200 1`, wantReason: reasonRequest},
		{name: "status not a number", line: `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" OK 1`, wantReason: reasonStatus},
		{name: "missing bytes", line: `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200`, wantReason: reasonBytes},
		{name: "empty line", line: ``, wantReason: reasonAddr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := lineParser{bits4: 24, bits6: 64}
			var req stats.Request
			combined, reason := p.parseCLF([]byte(tc.line), &req)
			if reason != tc.wantReason {
				t.Fatalf("reason = %q, want %q", reason, tc.wantReason)
			}
			if reason != "" {
				return
			}
			if combined != tc.wantCombined {
				t.Errorf("combined = %v, want %v", combined, tc.wantCombined)
			}
			if g := got(&req); g != tc.want {
				t.Errorf("got  %+v\nwant %+v", g, tc.want)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name       string
		line       string
		want       want
		wantReason string
	}{
		{
			name: "nginx escape=json",
			line: `{"time_iso8601":"2026-01-01T10:00:00+01:00","remote_addr":"198.51.100.7","request":"GET /donate?amount=5 HTTP/1.1","status":"200","body_bytes_sent":"512","http_referer":"https://example.org/","http_user_agent":"Mozilla/5.0","upstream_response_time":"0.012, 0.030"}`,
			want: want{Time: ts("2026-01-01T09:00:00Z"), Addr: "198.51.100.7", Prefix: "198.51.100.0/24", Method: "GET", Path: "/donate", Query: "amount=5", UserAgent: "Mozilla/5.0", Referer: true, Status: 200, Bytes: 512, Latency: 12 * time.Millisecond},
		},
		{
			name: "nginx time_local and escaped user agent",
			line: `{"time_local":"10/Oct/2000:13:55:36 -0700","remote_addr":"192.0.2.1","request_method":"POST","request_uri":"/login","status":401,"body_bytes_sent":0,"http_user_agent":"a\"b\\c\u00e9\ud83d\ude00"}`,
			want: want{Time: ts("2000-10-10T20:55:36Z"), Addr: "192.0.2.1", Prefix: "192.0.2.0/24", Method: "POST", Path: "/login", UserAgent: "a\"b\\cé😀", Status: 401},
		},
		{
			name: "caddy nested request and header arrays",
			line: `{"level":"info","ts":1767261600.5,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"10.0.0.1","remote_port":"5555","client_ip":"203.0.113.9","proto":"HTTP/2.0","method":"GET","host":"example.org","uri":"/news/1?x=y","headers":{"User-Agent":["Mozilla/5.0 (X11)"],"Referer":["https://example.org/"],"Accept":["*/*"]}},"bytes_read":0,"user_id":"","duration":0.25,"size":1234,"status":200,"resp_headers":{"Server":["Caddy"]}}`,
			want: want{Time: ts("2026-01-01T10:00:00.5Z"), Addr: "203.0.113.9", Prefix: "203.0.113.0/24", Method: "GET", Path: "/news/1", Query: "x=y", UserAgent: "Mozilla/5.0 (X11)", Referer: true, Status: 200, Bytes: 1234, Latency: 250 * time.Millisecond},
		},
		{
			name: "traefik",
			line: `{"ClientAddr":"192.0.2.10:51234","ClientHost":"192.0.2.10","DownstreamContentSize":77,"DownstreamStatus":429,"RequestMethod":"GET","RequestPath":"/api/search?q=x","StartUTC":"2026-01-01T10:00:00.123456789Z","request_User-Agent":"python-requests/2.31"}`,
			want: want{Time: ts("2026-01-01T10:00:00.123456789Z"), Addr: "192.0.2.10", Prefix: "192.0.2.0/24", Method: "GET", Path: "/api/search", Query: "q=x", UserAgent: "python-requests/2.31", Status: 429, Bytes: 77},
		},
		{
			name: "epoch milliseconds and ipv6",
			line: `{"@timestamp":1767261600123,"ip":"2001:db8::1","method":"GET","path":"/","status":200,"bytes":1}`,
			want: want{Time: ts("2026-01-01T10:00:00.123Z"), Addr: "2001:db8::1", Prefix: "2001:db8::/64", Method: "GET", Path: "/", Status: 200, Bytes: 1},
		},
		{
			name: "exponent seconds",
			line: `{"ts":1.7672616e9,"ip":"192.0.2.1","uri":"/"}`,
			want: want{Time: ts("2026-01-01T10:00:00Z"), Addr: "192.0.2.1", Prefix: "192.0.2.0/24", Path: "/"},
		},
		{name: "not json", line: `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1`, wantReason: reasonJSON},
		{name: "trailing garbage", line: `{"ts":1,"ip":"192.0.2.1"} x`, wantReason: reasonJSON},
		{name: "truncated", line: `{"ts":1767261600,"ip":"192.0.2.1","path":"/`, wantReason: reasonJSON},
		{name: "no time", line: `{"ip":"192.0.2.1","path":"/"}`, wantReason: reasonJSONTime},
		{name: "unparseable time", line: `{"time":"yesterday","ip":"192.0.2.1"}`, wantReason: reasonJSONTime},
		{name: "no address", line: `{"ts":1767261600,"path":"/"}`, wantReason: reasonJSONAddr},
		{name: "bad address", line: `{"ts":1767261600,"remote_addr":"unknown"}`, wantReason: reasonAddr},
		{name: "bad status", line: `{"ts":1767261600,"ip":"192.0.2.1","status":"2xx"}`, wantReason: reasonStatus},
		{name: "too deep", line: `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":1}}}}}}}}},"ts":1,"ip":"192.0.2.1"}`, wantReason: reasonJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Cross-check that the test line is (in)valid JSON as claimed.
			if tc.wantReason == "" && !json.Valid([]byte(tc.line)) {
				t.Fatalf("test line is not valid JSON")
			}
			p := lineParser{bits4: 24, bits6: 64}
			var req stats.Request
			reason := p.parseJSON([]byte(tc.line), &req)
			if reason != tc.wantReason {
				t.Fatalf("reason = %q, want %q", reason, tc.wantReason)
			}
			if reason != "" {
				return
			}
			if g := got(&req); g != tc.want {
				t.Errorf("got  %+v\nwant %+v", g, tc.want)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	combined := `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"` + "\n"
	common := `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1` + "\n"
	js := `{"ts":1767261600,"ip":"192.0.2.1","uri":"/","status":200}` + "\n"
	errLine := `[Tue Jul 22 06:48:30 2008] [error] [client 198.51.100.86] script not found` + "\n"
	tests := []struct {
		name    string
		input   string
		want    Format
		wantErr error
	}{
		{name: "combined", input: strings.Repeat(combined, 3), want: FormatCombined},
		{name: "common", input: strings.Repeat(common, 3), want: FormatCommon},
		{name: "mixed common and combined is combined", input: common + combined + common, want: FormatCombined},
		{name: "json lines", input: strings.Repeat(js, 3), want: FormatJSON},
		{name: "comments and blank lines ignored", input: "# comment\n\n" + js, want: FormatJSON},
		{name: "majority wins", input: errLine + errLine + combined, want: FormatCombined},
		{name: "crlf endings", input: strings.ReplaceAll(strings.Repeat(combined, 2), "\n", "\r\n"), want: FormatCombined},
		{name: "apache error log is not an access log", input: strings.Repeat(errLine, 4), wantErr: ErrUnknownFormat},
		{name: "empty input", input: "", wantErr: ErrUnknownFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lr, err := NewLogReader(strings.NewReader(tc.input), LogOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && lr.Format() != tc.want {
				t.Errorf("format = %v, want %v", lr.Format(), tc.want)
			}
		})
	}
}

// readAll reads every request, copying the strings it checks.
func readAll(t testing.TB, lr *LogReader) []want {
	t.Helper()
	var out []want
	var req stats.Request
	for lr.Next(&req) {
		out = append(out, got(&req))
	}
	if err := lr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLogReaderMalformedLines(t *testing.T) {
	good := `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"`
	lines := []string{
		good,                                // 1
		"garbage line",                      // 2 malformed
		"",                                  // 3 skipped
		"# comment",                         // 4 skipped
		good,                                // 5
		`192.0.2.1 - - [bad] "GET /" 200 1`, // 6 malformed
		strings.Repeat("x", 2*maxLineBytes), // 7 malformed: too long
		good,                                // 8
		`192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200`, // 9 malformed, no newline at end
	}
	input := strings.Join(lines, "\n")
	tests := []struct {
		name       string
		max        int
		wantLines  []int64
		wantReason []string
	}{
		{name: "all samples kept", max: 10, wantLines: []int64{2, 6, 7, 9}, wantReason: []string{reasonAddr, reasonTimestamp, reasonTooLong, reasonBytes}},
		{name: "samples limited, all counted", max: 2, wantLines: []int64{2, 6}, wantReason: []string{reasonAddr, reasonTimestamp}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lr, err := NewLogReader(strings.NewReader(input), LogOptions{MaxMalformed: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			recs := readAll(t, lr)
			if len(recs) != 3 {
				t.Errorf("records = %d, want 3", len(recs))
			}
			m := lr.Malformed()
			if m.Count != 4 {
				t.Errorf("malformed count = %d, want 4", m.Count)
			}
			if lr.Skipped() != 2 {
				t.Errorf("skipped = %d, want 2", lr.Skipped())
			}
			if lr.Lines() != 9 {
				t.Errorf("lines = %d, want 9", lr.Lines())
			}
			if len(m.First) != len(tc.wantLines) {
				t.Fatalf("samples = %v, want lines %v", m.First, tc.wantLines)
			}
			for i, s := range m.First {
				if s.Line != tc.wantLines[i] || s.Reason != tc.wantReason[i] {
					t.Errorf("sample %d = line %d %q, want line %d %q", i, s.Line, s.Reason, tc.wantLines[i], tc.wantReason[i])
				}
				if len(s.Sample) > 4*maxSampleBytes {
					t.Errorf("sample %d is %d bytes, want it bounded", i, len(s.Sample))
				}
			}
		})
	}
}

func TestLongLineWithinLimit(t *testing.T) {
	ua := strings.Repeat("A", 3*logBufferBytes)
	line := `192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "` + ua + `"`
	input := line + "\n" + line + "\n"
	lr, err := NewLogReader(strings.NewReader(input), LogOptions{Format: FormatCombined})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, lr)
	if len(recs) != 2 || recs[0].UserAgent != ua || recs[1].UserAgent != ua {
		t.Fatalf("got %d records (malformed %v), want 2 with the long user agent", len(recs), lr.Malformed().First)
	}
}

func TestApacheFixture(t *testing.T) {
	tests := []struct {
		name string
		gzip bool
	}{
		{name: "plain"},
		{name: "gzip", gzip: true},
	}
	raw, err := os.ReadFile(apacheFixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := raw
			if tc.gzip {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(raw)
				zw.Close()
				data = buf.Bytes()
			}
			lr, err := NewLogReader(bytes.NewReader(data), LogOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer lr.Close()
			if lr.Format() != FormatCombined {
				t.Errorf("format = %v, want combined", lr.Format())
			}
			recs := readAll(t, lr)
			if len(recs) != 300 || lr.Malformed().Count != 0 {
				t.Fatalf("records = %d, malformed = %v; want 300, none", len(recs), lr.Malformed().First)
			}
			addrs := map[string]bool{}
			queries := 0
			for _, r := range recs {
				addrs[r.Addr] = true
				if r.Query != "" {
					queries++
				}
			}
			if len(addrs) != 80 {
				t.Errorf("distinct addresses = %d, want 80", len(addrs))
			}
			if queries != 39 {
				t.Errorf("requests with a query = %d, want 39", queries)
			}
			if first, last := recs[0].Time, recs[299].Time; first != ts("2015-05-17T10:05:03Z") || last != ts("2015-05-17T12:05:35Z") {
				t.Errorf("first/last time = %v/%v", time.Unix(0, first).UTC(), time.Unix(0, last).UTC())
			}
		})
	}
}

// TestApacheLogsShared reads the whole 10,000-line benign log.
func TestApacheLogsShared(t *testing.T) {
	requireShared(t, apacheLogs)
	f, err := os.Open(apacheLogs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr, err := NewLogReader(f, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, lr)
	addrs := map[string]bool{}
	prev := int64(0)
	outOfOrder := 0
	for _, r := range recs {
		addrs[r.Addr] = true
		if r.Time < prev {
			outOfOrder++
		}
		prev = r.Time
	}
	if len(recs) != 10_000 || lr.Malformed().Count != 0 {
		t.Errorf("records = %d, malformed = %v; want 10000, none", len(recs), lr.Malformed().First)
	}
	if len(addrs) != 1753 {
		t.Errorf("distinct client addresses = %d, want 1753", len(addrs))
	}
	t.Logf("%d lines out of time order", outOfOrder)
}

// TestFail2banLogs checks the parser against fail2ban's annotated excerpts
// (GPL-2.0, read in place): every access line it parses must yield the host
// fail2ban's "# failJSON" comment names, and every line it rejects must be
// counted with its line number.
func TestFail2banLogs(t *testing.T) {
	requireShared(t, fail2banDir)
	tests := []struct {
		file          string
		wantRecords   int
		wantMalformed uint64
		wantErr       error
	}{
		{file: "apache-badbots", wantRecords: 4},
		{file: "nginx-bad-request", wantRecords: 8},
		{file: "nginx-botsearch", wantRecords: 8, wantMalformed: 6},
		{file: "apache-botsearch", wantErr: ErrUnknownFormat},
		{file: "nginx-limit-req", wantErr: ErrUnknownFormat},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			name := filepath.Join(fail2banDir, tc.file)
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			lr, err := NewLogReader(bytes.NewReader(raw), LogOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			// Expected host per line number, from the preceding failJSON comment.
			hosts := map[int64]string{}
			sc := bufio.NewScanner(bytes.NewReader(raw))
			var pending string
			for n := int64(1); sc.Scan(); n++ {
				line := sc.Text()
				if rest, ok := strings.CutPrefix(line, "# failJSON:"); ok {
					var fj struct{ Host string }
					if json.Unmarshal([]byte(rest), &fj) == nil {
						pending = fj.Host
					}
					continue
				}
				if strings.TrimSpace(line) != "" && pending != "" {
					hosts[n] = pending
					pending = ""
				}
			}
			var req stats.Request
			n := 0
			for lr.Next(&req) {
				n++
				if want, ok := hosts[lr.Lines()]; ok {
					if a, err := netip.ParseAddr(want); err == nil && a != req.Addr {
						t.Errorf("line %d: addr %v, failJSON host %v", lr.Lines(), req.Addr, a)
					}
				}
			}
			if n != tc.wantRecords || lr.Malformed().Count != tc.wantMalformed {
				t.Errorf("records = %d, malformed = %d (%v); want %d, %d", n, lr.Malformed().Count, lr.Malformed().First, tc.wantRecords, tc.wantMalformed)
			}
		})
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	raw, err := os.ReadFile(apacheFixture)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat(raw, 20)
	lr, err := NewLogReader(bytes.NewReader(data), LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var req stats.Request
	lr.Next(&req)
	if n := testing.AllocsPerRun(1000, func() {
		if !lr.Next(&req) {
			t.Fatal("ran out of lines")
		}
	}); n != 0 {
		t.Errorf("Next allocates %.2f times per line, want 0", n)
	}
}
