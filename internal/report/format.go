package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// fmtInt formats n with thousands separators ("37,841").
func fmtInt(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// fmtRate formats a per-second rate: whole numbers with separators, small
// ones with one decimal.
func fmtRate(r float64) string {
	if r < 10 && r != math.Trunc(r) {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return fmtInt(uint64(math.Round(r)))
}

// pct formats a share (0..1) as a percentage: "49%", "0.8%", "<0.1%".
func pct(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.001:
		return "<0.1%"
	case f < 0.1:
		return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
	case f >= 0.9 && f < 1:
		// One decimal near the top, never rounded up to "100%": 99.5%
		// served is not all.
		return strconv.FormatFloat(math.Floor(f*1000)/10, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(math.Round(f*100), 'f', 0, 64) + "%"
}

// fmtBytes formats a byte count in binary units.
func fmtBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// fmtBits formats a bit rate ("31.8 Mbit/s").
func fmtBits(bps float64) string {
	switch {
	case bps >= 1e9:
		return strconv.FormatFloat(bps/1e9, 'f', 2, 64) + " Gbit/s"
	case bps >= 1e6:
		return strconv.FormatFloat(bps/1e6, 'f', 1, 64) + " Mbit/s"
	case bps >= 1e3:
		return strconv.FormatFloat(bps/1e3, 'f', 1, 64) + " kbit/s"
	}
	return strconv.FormatFloat(bps, 'f', 0, 64) + " bit/s"
}

// fmtTime formats an instant in UTC, with milliseconds when it has any.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	if t.Nanosecond()/1e6 != 0 {
		return t.Format("2006-01-02 15:04:05.000 UTC")
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}

// fmtClock formats an instant's time of day in UTC ("10:30:21.250").
func fmtClock(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1e6 != 0 {
		return t.Format("15:04:05.000")
	}
	return t.Format("15:04:05")
}

// fmtDay formats an instant's date for people ("Wednesday 28 April 2021").
func fmtDay(t time.Time) string { return t.UTC().Format("Monday 2 January 2006") }

// humanDur says a duration in words, rounded for people ("1.5 seconds",
// "about 12 minutes", "2 hours 5 minutes").
func humanDur(d time.Duration) string {
	if d < time.Second {
		// Rounded as engDur rounds, so that the summary and the timeline
		// table say the same number (249.6 ms is "250" in both).
		d = d.Round(time.Millisecond)
	}
	switch {
	case d < time.Second:
		return plural(int(d.Milliseconds()), "millisecond")
	case d < time.Minute:
		s := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
		s = strings.TrimSuffix(s, ".0")
		if s == "1" {
			return "1 second"
		}
		return s + " seconds"
	case d < time.Hour:
		m := int(d.Round(time.Minute).Minutes())
		if d%time.Minute == 0 {
			return plural(m, "minute")
		}
		return "about " + plural(m, "minute")
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return plural(h, "hour")
	}
	return plural(h, "hour") + " " + plural(m, "minute")
}

// count is plural for counts ("1 response", "2,500 responses").
func count(n uint64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmtInt(n) + " " + unit + "s"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// engDur formats a duration for engineers (Go syntax, milliseconds kept).
func engDur(d time.Duration) string { return d.Round(time.Millisecond).String() }
