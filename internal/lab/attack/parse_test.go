package attack

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string // testdata file, or inline when it has no ".txt"
		want    Result
		wantErr string
	}{
		{name: "recorded run with 404s", out: "wrk_ok.txt",
			want: Result{Sent: 1128, Connections: 8, Statuses: map[int]uint64{200: 1011, 404: 112}}},
		{name: "recorded refused connection", out: "wrk_refused.txt", wantErr: "no result line"},
		{name: "socket errors and closes count as reconnects",
			out: "  4 threads and 100 connections\nPORTCULLIS_LAB_WRK " +
				`{"sent":50,"completed":40,"closes":7,"errors":{"connect":1,"read":2,"write":3,"status":0,"timeout":4},"statuses":{"503":40}}`,
			want: Result{Sent: 50, Errors: 10, Connections: 112, Statuses: map[int]uint64{503: 40}}},
		{name: "no responses", out: "  1 threads and 1 connections\nPORTCULLIS_LAB_WRK " +
			`{"sent":3,"completed":0,"closes":0,"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":3},"statuses":{}}`,
			want: Result{Sent: 3, Errors: 3, Connections: 1}},
		{name: "garbled json", out: "PORTCULLIS_LAB_WRK {\"sent\":", wantErr: "result line"},
		{name: "status out of range", out: `PORTCULLIS_LAB_WRK {"statuses":{"42":1}}`, wantErr: "bad status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := []byte(tt.out)
			if strings.HasSuffix(tt.out, ".txt") {
				out = readTestdata(t, tt.out)
			}
			got, err := parseWrk(out)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseH2load(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    Result
		wantErr string
	}{
		{name: "recorded run with 4xx", out: "h2load_ok.txt",
			want: Result{Sent: 1958, Connections: 4, Statuses: map[int]uint64{200: 1727, 400: 191}}},
		{name: "recorded refused connection", out: "h2load_refused.txt", want: Result{Errors: 2}},
		{name: "errors and timeouts", out: "spawning thread #0: 3 total client(s). x\nApplication protocol: h2c\n" +
			"requests: 10 total, 12 started, 9 done, 5 succeeded, 4 failed, 1 errored, 2 timeout\n" +
			"status codes: 5 2xx, 0 3xx, 0 4xx, 4 5xx\n",
			want: Result{Sent: 12, Errors: 3, Connections: 3, Statuses: map[int]uint64{200: 5, 500: 4}}},
		{name: "no summary", out: "starting benchmark...\n", wantErr: "no summary"},
		{name: "garbled counts", out: "requests: lots total\n", wantErr: "bad count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := []byte(tt.out)
			if strings.HasSuffix(tt.out, ".txt") {
				out = readTestdata(t, tt.out)
			}
			got, err := parseH2load(out)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseSlowhttptest(t *testing.T) {
	tests := []struct {
		name    string
		out     string // testdata prefix (.txt + .csv) or inline stdout
		csv     string // inline CSV when out is inline
		want    Result
		wantErr string
	}{
		{name: "recorded slowloris to time limit", out: "slowhttptest_slowloris",
			want: Result{Sent: 20, Connections: 20}},
		{name: "recorded run cancelled by SIGINT", out: "slowhttptest_cancelled",
			want: Result{Sent: 10, Connections: 10}},
		{name: "recorded refused connection", out: "slowhttptest_refused", wantErr: `exit status "Connection refused"`},
		{name: "target closes connections",
			out:  "\x1b[0mExit status:\x1b[1;36m No open connections left\x1b[0m\n",
			csv:  "Seconds,Closed,Pending,Connected,Service Available\n0,0,5,0,1\n1,2,0,3,1\n2,5,0,0,1\n",
			want: Result{Sent: 5, Connections: 5, Errors: 5}},
		{name: "empty statistics", out: "Exit status: Hit test time limit\n", csv: "Seconds,Closed,Pending,Connected,Service Available\n",
			wantErr: "empty statistics"},
		{name: "garbled row", out: "", csv: "0,x,1,2,3\n", wantErr: "csv row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, csv := []byte(tt.out), []byte(tt.csv)
			if strings.HasPrefix(tt.out, "slowhttptest_") {
				out, csv = readTestdata(t, tt.out+".txt"), readTestdata(t, tt.out+".csv")
			}
			got, err := parseSlowhttptest(out, csv)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func checkParse(t *testing.T, got Result, err error, want Result, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if got.Sent != want.Sent || got.Errors != want.Errors || got.Connections != want.Connections || !maps.Equal(got.Statuses, want.Statuses) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCopyInjecting(t *testing.T) {
	extra := "X-Forwarded-For: 198.18.0.1\r\n"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"request line then headers", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\n" + extra + "Host: a\r\n\r\n"},
		{"relay host rewritten", "GET / HTTP/1.1\r\nHost: relay:1\r\nX: y\r\n\r\n", "GET / HTTP/1.1\r\n" + extra + "Host: target:2\r\nX: y\r\n\r\n"},
		{"partial slowloris", "GET / HTTP/1.1\r\nHost: a\r\nX-a: ", "GET / HTTP/1.1\r\n" + extra + "Host: a\r\nX-a: "},
		{"lower-case host line", "GET / HTTP/1.1\r\nhost: a\r\n", "GET / HTTP/1.1\r\n" + extra + "host: a\r\n"},
		{"no host before the source ends", "GET / HTTP/1.1\r\nX-a: b\r\n", "GET / HTTP/1.1\r\nX-a: b\r\n"},
		{"headers end without host", "GET / HTTP/1.0\r\n\r\nbody", "GET / HTTP/1.0\r\n" + extra + "\r\nbody"},
		{"no newline yet", "GET / HTT", "GET / HTT"},
		{"empty", "", ""},
		{"overlong first line passes unchanged", strings.Repeat("a", 9000) + "\nb", strings.Repeat("a", 9000) + "\nb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			// oneByteReader makes the request line arrive in pieces.
			// oneByteReader makes the head arrive in pieces.
			_ = copyInjecting(&out, &oneByteReader{s: tt.in}, []byte(extra), []byte("Host: relay:1\r\n"), []byte("Host: target:2\r\n"))
			if out.String() != tt.want {
				t.Errorf("copyInjecting = %q, want %q", out.String(), tt.want)
			}
		})
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func TestParseStatusLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code int
		ok   bool
	}{
		{"408", "HTTP/1.1 408 Request Timeout\r\n", 408, true},
		{"http/1.0", "HTTP/1.0 200 OK\r\n", 200, true},
		{"not http", "SSH-2.0-x\r\n", 0, false},
		{"short", "HTTP/1.1 2", 0, false},
		{"bad code", "HTTP/1.1 abc x", 0, false},
		{"code below 100", "HTTP/1.1 099 x", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ok := parseStatusLine([]byte(tt.in))
			if code != tt.code || ok != tt.ok {
				t.Errorf("parseStatusLine(%q) = %d, %v; want %d, %v", tt.in, code, ok, tt.code, tt.ok)
			}
		})
	}
}

func FuzzParseToolOutput(f *testing.F) {
	for _, name := range []string{"wrk_ok.txt", "h2load_ok.txt", "slowhttptest_slowloris.txt", "slowhttptest_slowloris.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("PORTCULLIS_LAB_WRK {\"statuses\":{\"200\":1}}\nrequests: 1 total\n0,1,2,3,4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseWrk(b); err == nil {
			for code := range r.Statuses {
				if code < 100 || code > 999 {
					t.Fatalf("parseWrk accepted status %d", code)
				}
			}
		}
		_, _ = parseH2load(b)
		if r, err := parseSlowhttptest(b, b); err == nil && r.Connections > r.Sent {
			t.Fatalf("parseSlowhttptest: connections %d > sent %d", r.Connections, r.Sent)
		}
		var out bytes.Buffer
		in := string(b)
		_ = copyInjecting(&out, strings.NewReader(in), []byte("X\r\n"), nil, nil)
		if i := strings.IndexByte(in, '\n'); i >= 0 && i < 8<<10 {
			if want := in[:i+1] + "X\r\n" + in[i+1:]; out.String() != want {
				t.Fatalf("copyInjecting(%q) = %q, want %q", in, out.String(), want)
			}
		} else if out.String() != in {
			t.Fatalf("copyInjecting(%q) = %q, want it unchanged", in, out.String())
		}
	})
}
