package report

import (
	"bufio"
	"io"
	"strings"
)

// writeMarkdown renders the report as CommonMark with GitHub tables. Charts
// are inline SVG inside <figure> HTML blocks (shown by renderers that allow
// HTML); the same figures are always in the tables beside them.
func writeMarkdown(w io.Writer, fx *facts) error {
	d := compose(fx)
	bw := bufio.NewWriter(w)
	p := func(s ...string) {
		for _, x := range s {
			bw.WriteString(x)
		}
	}
	p("# ", mdText(d.Title), "\n\n")
	for i, s := range d.Summary {
		if i > 0 {
			p(">\n")
		}
		p("> ", mdText(s), "\n")
	}
	p("\n")
	mdTable(bw, []string{"At a glance", ""}, pairs(d.Glance), nil)
	for _, s := range d.Sections {
		p("\n## ", mdText(s.Title), "\n")
		for _, b := range s.Blocks {
			p("\n")
			switch b.Kind {
			case bPara:
				p(mdText(b.Text), "\n")
			case bNote:
				p("> **Note:** ", mdText(b.Text), "\n")
			case bList:
				for _, it := range b.Items {
					p("- ", mdText(it), "\n")
				}
			case bTable:
				mdTable(bw, b.Head, b.Rows, b.Right)
			case bFacts:
				mdTable(bw, []string{"", ""}, b.Rows, nil)
			case bChart:
				p("<figure>\n", b.SVG, "\n<figcaption>", htmlText(b.Alt), "</figcaption>\n</figure>\n")
			}
		}
	}
	return bw.Flush()
}

func mdTable(w *bufio.Writer, head []string, rows [][]string, right []bool) {
	row := func(cells []string) {
		w.WriteString("|")
		for _, c := range cells {
			w.WriteString(" ")
			w.WriteString(mdText(c))
			w.WriteString(" |")
		}
		w.WriteString("\n")
	}
	row(head)
	w.WriteString("|")
	for i := range head {
		if i < len(right) && right[i] {
			w.WriteString("---:|")
		} else {
			w.WriteString("---|")
		}
	}
	w.WriteString("\n")
	for _, r := range rows {
		row(r)
	}
}

// mdText escapes text for a Markdown paragraph or table cell: characters
// that would start markup (emphasis, links, code, raw HTML, table pipes)
// are backslash-escaped, "&" and "<" become entities, newlines spaces. An
// underscore inside a word (syn_flood) is left alone: CommonMark does not
// treat it as emphasis.
func mdText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\', '*', '`', '[', ']', '|', '#', '~', '!':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '_':
			if i > 0 && i < len(s)-1 && alnum(s[i-1]) && alnum(s[i+1]) {
				b.WriteByte(c)
			} else {
				b.WriteString(`\_`)
			}
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func alnum(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func htmlText(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}
