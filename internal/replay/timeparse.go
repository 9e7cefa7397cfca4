package replay

import "time"

// monthIndex maps the three-letter English month abbreviations of strftime's
// %b to 1..12; 0 if not a month.
func monthIndex(b []byte) int {
	if len(b) != 3 {
		return 0
	}
	// Case-insensitive on the last two letters only as far as logs go:
	// "May", "may" and "MAY" all occur.
	c0, c1, c2 := b[0]|0x20, b[1]|0x20, b[2]|0x20
	switch c0 {
	case 'j':
		if c1 == 'a' && c2 == 'n' {
			return 1
		}
		if c1 == 'u' && c2 == 'n' {
			return 6
		}
		if c1 == 'u' && c2 == 'l' {
			return 7
		}
	case 'f':
		if c1 == 'e' && c2 == 'b' {
			return 2
		}
	case 'm':
		if c1 == 'a' && c2 == 'r' {
			return 3
		}
		if c1 == 'a' && c2 == 'y' {
			return 5
		}
	case 'a':
		if c1 == 'p' && c2 == 'r' {
			return 4
		}
		if c1 == 'u' && c2 == 'g' {
			return 8
		}
	case 's':
		if c1 == 'e' && c2 == 'p' {
			return 9
		}
	case 'o':
		if c1 == 'c' && c2 == 't' {
			return 10
		}
	case 'n':
		if c1 == 'o' && c2 == 'v' {
			return 11
		}
	case 'd':
		if c1 == 'e' && c2 == 'c' {
			return 12
		}
	}
	return 0
}

// daysFromCivil returns the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (H. Hinnant, "chrono-Compatible Low-Level
// Date Algorithms", days_from_civil).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// num parses exactly len(b) decimal digits.
func num(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// clfTime parses the Common Log Format time "02/Jan/2006:15:04:05 -0700"
// (an optional ".fraction" after the seconds is accepted) into Unix
// nanoseconds. The last result is cached: consecutive lines usually share
// their second.
func (p *lineParser) clfTime(b []byte) (int64, bool) {
	if len(b) == p.lastTSN && string(b) == string(p.lastTS[:p.lastTSN]) {
		return p.lastTime, true
	}
	t, ok := parseCLFTime(b)
	if ok && len(b) <= len(p.lastTS) {
		p.lastTSN = copy(p.lastTS[:], b)
		p.lastTime = t
	}
	return t, ok
}

func parseCLFTime(b []byte) (int64, bool) {
	// dd/Mon/yyyy:HH:MM:SS[.frac] ±hhmm
	if len(b) < 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' {
		return 0, false
	}
	day, ok1 := num(b[0:2])
	mon := monthIndex(b[3:6])
	year, ok2 := num(b[7:11])
	hh, ok3 := num(b[12:14])
	mm, ok4 := num(b[15:17])
	ss, ok5 := num(b[18:20])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || mon == 0 || day < 1 || day > daysIn[mon] ||
		year < 1970 || hh > 23 || mm > 59 || ss > 60 {
		return 0, false
	}
	rest := b[20:]
	var frac int64
	if rest[0] == '.' {
		i := 1
		scale := int64(1e8)
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			if scale > 0 {
				frac += int64(rest[i]-'0') * scale
				scale /= 10
			}
			i++
		}
		rest = rest[i:]
	}
	if len(rest) != 6 || rest[0] != ' ' || (rest[1] != '+' && rest[1] != '-') {
		return 0, false
	}
	zh, ok1 := num(rest[2:4])
	zm, ok2 := num(rest[4:6])
	if !ok1 || !ok2 || zh > 23 || zm > 59 {
		return 0, false
	}
	off := int64(zh*3600 + zm*60)
	if rest[1] == '-' {
		off = -off
	}
	secs := daysFromCivil(year, mon, day)*86400 + int64(hh*3600+mm*60+ss) - off
	return secs*int64(time.Second) + frac, true
}
