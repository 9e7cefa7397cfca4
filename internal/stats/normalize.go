package stats

import "bytes"

// AppendNormalizedPath appends to dst the normalised form of the URL path p
// and returns the extended slice. Normalisation collapses per-object segments
// so that heavy hitters count routes, not objects: a segment of only digits
// becomes ":n", a UUID (8-4-4-4-12 hex) ":uuid", and a hex string of 8 or more
// characters containing a digit ":hex". p may be a string or a byte slice. Empty segments are kept (so "//" stays
// distinguishable), a missing leading '/' is added, and the result is
// truncated to maxLen bytes (maxLen ≤ 0: no limit). It does not allocate when
// dst has room.
func AppendNormalizedPath[S ~string | ~[]byte](dst []byte, p S, maxLen int) []byte {
	start := len(dst)
	if len(p) == 0 || p[0] != '/' {
		dst = append(dst, '/')
	}
	for i := 0; i < len(p); {
		if p[i] == '/' {
			dst = append(dst, '/')
			i++
			continue
		}
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i:j]
		switch {
		case isDigits(seg):
			dst = append(dst, ":n"...)
		case isUUID(seg):
			dst = append(dst, ":uuid"...)
		case isHexID(seg):
			dst = append(dst, ":hex"...)
		default:
			dst = append(dst, seg...)
		}
		i = j
	}
	if maxLen > 0 && len(dst)-start > maxLen {
		dst = dst[:start+maxLen]
	}
	return dst
}

func isDigits[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isUUID[S ~string | ~[]byte](s S) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexByte(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHexID[S ~string | ~[]byte](s S) bool {
	if len(s) < 8 {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isHexByte(c) {
			return false
		}
		if c >= '0' && c <= '9' {
			digit = true
		}
	}
	return digit
}

// IsAssetPath reports whether the path names a static asset (style sheet,
// script, image, font, media, source map) by its extension, compared without
// regard to case. Browsers fetch assets after pages; most flood tools do not.
func IsAssetPath[S ~string | ~[]byte](p S) bool {
	dot := -1
	for i := len(p) - 1; i >= 0 && p[i] != '/'; i-- {
		if p[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 || len(p)-dot > 6 {
		return false
	}
	var buf [6]byte
	ext := buf[:0]
	for i := dot + 1; i < len(p); i++ {
		c := p[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		ext = append(ext, c)
	}
	switch string(ext) {
	case "css", "js", "mjs", "png", "jpg", "jpeg", "gif", "svg", "webp", "avif",
		"ico", "woff", "woff2", "ttf", "otf", "eot", "map", "mp4", "webm", "mp3":
		return true
	}
	return false
}

// UAClass is a coarse user-agent class.
type UAClass uint8

// User-agent classes, see ClassifyUserAgent.
const (
	UAEmpty   UAClass = iota // no User-Agent header
	UABrowser                // looks like a mainstream browser
	UABot                    // self-declared crawler or monitor ("bot", "spider", "crawl")
	UATool                   // HTTP library or command-line tool (curl, python-requests, Go-http-client...)
	UAOther                  // anything else
	numUAClasses
)

var (
	uaBotWords  = [][]byte{[]byte("bot"), []byte("spider"), []byte("crawl"), []byte("slurp"), []byte("monitor")}
	uaToolWords = [][]byte{[]byte("curl/"), []byte("wget/"), []byte("python"), []byte("go-http-client"),
		[]byte("java/"), []byte("okhttp"), []byte("libwww"), []byte("httpclient"), []byte("axios"),
		[]byte("node-fetch"), []byte("aiohttp"), []byte("scrapy"), []byte("perl"), []byte("ruby"),
		[]byte("php/"), []byte("apachebench"), []byte("wrk"), []byte("hey/"), []byte("siege"), []byte("masscan")}
)

// ClassifyUserAgent returns the coarse class of a User-Agent value. It is a
// heuristic for aggregate statistics (share of browser-like traffic), not a
// security decision: any client can claim to be a browser.
func ClassifyUserAgent(ua []byte) UAClass {
	if len(ua) == 0 {
		return UAEmpty
	}
	var buf [160]byte
	n := copy(buf[:], ua)
	low := buf[:n]
	for i, c := range low {
		if c >= 'A' && c <= 'Z' {
			low[i] = c + 'a' - 'A'
		}
	}
	for _, w := range uaBotWords {
		if bytes.Contains(low, w) {
			return UABot
		}
	}
	for _, w := range uaToolWords {
		if bytes.Contains(low, w) {
			return UATool
		}
	}
	if bytes.HasPrefix(low, []byte("mozilla/5.0 (")) &&
		(bytes.Contains(low, []byte("gecko")) || bytes.Contains(low, []byte("webkit"))) {
		return UABrowser
	}
	return UAOther
}
