package replay

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a one-line progress bar on a terminal:
//
//	[=========>          ]  47%  file 1/2  1.2M records  3 incidents
//
// It draws at most ten times a second and nothing at all when its writer is
// not a terminal (a pipe, a file, a test buffer), so output stays clean.
type progress struct {
	w     io.Writer
	total int64
	now   func() time.Time
	last  time.Time
	drawn bool
}

// newProgress returns a bar on w if w is a terminal, else a no-op bar.
func newProgress(w io.Writer, total int64, now func() time.Time) *progress {
	if !isTerminal(w) {
		return &progress{}
	}
	return &progress{w: w, total: total, now: now}
}

// isTerminal reports whether w is a character device (a TTY).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update redraws the bar with done of total bytes read.
func (p *progress) update(file, files int, done int64, records uint64, incidents int) {
	if p.w == nil || p.total <= 0 {
		return
	}
	now := p.now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	fmt.Fprint(p.w, "\r"+renderBar(done, p.total, 30)+fmt.Sprintf("  file %d/%d  %s records  %d incidents\x1b[K", file, files, humanCount(records), incidents))
	p.drawn = true
}

// clear erases the bar.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// renderBar returns "[====>   ] NN%" for done/total in width cells.
func renderBar(done, total int64, width int) string {
	frac := float64(done) / float64(total)
	frac = min(max(frac, 0), 1)
	full := int(frac * float64(width))
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(strings.Repeat("=", full))
	if full < width {
		b.WriteByte('>')
		b.WriteString(strings.Repeat(" ", width-full-1))
	}
	fmt.Fprintf(&b, "] %3d%%", int(frac*100))
	return b.String()
}

// humanCount formats n as 999, 12.3k, 4.5M.
func humanCount(n uint64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
