package netset

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// Samples in the shapes the upstream lists are published in (addresses are
// documentation ranges).
const (
	fireholSample = `#
# firehol_level1
#
# ipv4 hash:net ipset
#
# Maintainer      : FireHOL
#
0.0.0.0/8
192.0.2.0/24

198.51.100.17
`
	dropTextSample = `; Spamhaus DROP List 2024/01/01 - (c) 2024 The Spamhaus Project SLU
; https://www.spamhaus.org/drop/drop.txt
; Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT
; Expires: Mon, 01 Jan 2024 01:00:00 GMT
1.10.16.0/20 ; SBL256894
203.0.113.0/24 ; SBL000001
`
	dropJSONSample = `{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
{"cidr":"2001:db8::/32","sblid":"SBL000002","rir":"ripencc"}
{"type":"metadata","timestamp":1704067200,"size":1234,"records":2,"copyright":"(c) 2024 The Spamhaus Project SLU","terms":"https://www.spamhaus.org/drop/terms/"}
`
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []string
		wantBad   []int // line numbers
		wantBadIs error
	}{
		{name: "firehol netset", in: fireholSample, want: []string{"0.0.0.0/8", "192.0.2.0/24", "198.51.100.17/32"}},
		{name: "spamhaus drop text", in: dropTextSample, want: []string{"1.10.16.0/20", "203.0.113.0/24"}},
		{name: "spamhaus drop json", in: dropJSONSample, want: []string{"1.10.16.0/20", "2001:db8::/32"}},
		{name: "empty input", in: "", want: nil},
		{name: "crlf bom and no final newline", in: "\xef\xbb\xbf192.0.2.0/24\r\n# c\r\n198.51.100.0/24", want: []string{"192.0.2.0/24", "198.51.100.0/24"}},
		{name: "trailing hash comment", in: "192.0.2.1 # scanner\n", want: []string{"192.0.2.1/32"}},
		{
			name: "bad lines reported not fatal", in: "192.0.2.0/24\nnot-an-ip\n10.0.0.0/33\n198.51.100.0/24\n",
			want: []string{"192.0.2.0/24", "198.51.100.0/24"}, wantBad: []int{2, 3}, wantBadIs: ErrInvalidPrefix,
		},
		{
			name: "json without cidr", in: `{"sblid":"SBL1"}` + "\n" + `{"cidr":"1.2.3.0/24"}` + "\n",
			want: []string{"1.2.3.0/24"}, wantBad: []int{1}, wantBadIs: ErrBadJSON,
		},
		{
			name: "broken json", in: `{"cidr":"1.2.3.0/24"` + "\n",
			wantBad: []int{1}, wantBadIs: ErrBadJSON,
		},
		{
			name: "json with bad cidr", in: `{"cidr":"1.2.3.0/40"}` + "\n",
			wantBad: []int{1}, wantBadIs: ErrInvalidPrefix,
		},
		{
			name: "two entries on one line", in: "192.0.2.1 192.0.2.2\n",
			wantBad: []int{1}, wantBadIs: ErrInvalidPrefix,
		},
		{
			name: "over-long line skipped", in: "192.0.2.0/24\n" + strings.Repeat("9", MaxLineBytes+10) + "\n198.51.100.0/24\n",
			want: []string{"192.0.2.0/24", "198.51.100.0/24"}, wantBad: []int{2}, wantBadIs: ErrLineTooLong,
		},
		{
			name: "over-long last line", in: "192.0.2.0/24\n" + strings.Repeat("#", 3*MaxLineBytes),
			want: []string{"192.0.2.0/24"}, wantBad: []int{2}, wantBadIs: ErrLineTooLong,
		},
		{
			name: "line of exactly the limit", in: "192.0.2.0/24" + strings.Repeat(" ", MaxLineBytes-13) + "\n",
			want: []string{"192.0.2.0/24"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := ParseList(strings.NewReader(tt.in), "list.txt")
			if err != nil {
				t.Fatalf("ParseList error: %v", err)
			}
			var gotS []string
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			if !slices.Equal(gotS, tt.want) {
				t.Errorf("prefixes = %v, want %v", gotS, tt.want)
			}
			var lines []int
			for _, le := range bad {
				lines = append(lines, le.Line)
				if le.File != "list.txt" || len(le.Text) > maxTextBytes {
					t.Errorf("bad line %+v: wrong file or overlong text", le)
				}
				if !errors.Is(le, tt.wantBadIs) {
					t.Errorf("bad line %d error %v, want %v", le.Line, le.Err, tt.wantBadIs)
				}
			}
			if !slices.Equal(lines, tt.wantBad) {
				t.Errorf("bad lines = %v, want %v (%v)", lines, tt.wantBad, bad)
			}
		})
	}
}

func TestParseListTooManyBadLines(t *testing.T) {
	in := strings.Repeat("junk\n", MaxBadLines+7) + "192.0.2.0/24\n"
	got, bad, err := ParseList(strings.NewReader(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("got %d prefixes, want 1", len(got))
	}
	if len(bad) != MaxBadLines+1 {
		t.Fatalf("got %d bad lines, want %d", len(bad), MaxBadLines+1)
	}
	last := bad[len(bad)-1]
	if !errors.Is(last, ErrTooManyBadLines) || last.Line != 0 || !strings.Contains(last.Error(), "7 more") {
		t.Errorf("summary = %v, want ErrTooManyBadLines with 7 more", last)
	}
}

func TestParseListIOErrorIsFatal(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("192.0.2.0/24\n"), iotest.ErrReader(boom))
	_, _, err := ParseList(r, "x")
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "netset: read x") {
		t.Fatalf("err = %v, want wrapped %v", err, boom)
	}
	// A reader that returns data one byte at a time still parses.
	got, _, err := ParseList(iotest.OneByteReader(strings.NewReader(dropTextSample)), "x")
	if err != nil || len(got) != 2 {
		t.Fatalf("OneByteReader: %v %v", got, err)
	}
}

func TestLineErrorMessage(t *testing.T) {
	le := LineError{File: "drop.txt", Line: 7, Text: "bogus", Err: ErrInvalidPrefix}
	if got, want := le.Error(), `drop.txt:7: invalid prefix (text "bogus")`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		fireholSample, dropTextSample, dropJSONSample, "",
		"\xef\xbb\xbf1.2.3.4\r\n", "{", `{"cidr":5}`, `{"type":"metadata"}`,
		"::ffff:1.2.3.4/100 ; x", "fe80::1%eth0\n", strings.Repeat("a", MaxLineBytes+1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		prefixes, bad, err := ParseList(strings.NewReader(string(data)), "fuzz")
		if err != nil {
			t.Fatalf("in-memory reader gave fatal error %v", err)
		}
		if len(bad) > MaxBadLines+1 {
			t.Fatalf("%d bad lines reported", len(bad))
		}
		for _, p := range prefixes {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("prefix %v not normalised", p)
			}
		}
		for _, le := range bad {
			if le.Err == nil || len(le.Text) > maxTextBytes {
				t.Fatalf("bad LineError %+v", le)
			}
		}
		set := New(prefixes...)
		for _, p := range prefixes {
			if !set.Contains(p.Addr()) {
				t.Fatalf("set misses %v", p)
			}
		}
	})
}
