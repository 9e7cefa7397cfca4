package report

import (
	"html/template"
	"io"

	"github.com/portcullis/portcullis/internal/geo"
)

// writeHTML renders the report as one self-contained page: inline CSS and
// SVG, no scripts, no external resources (it can be mailed or archived as
// one file). All text goes through html/template's escaping; the SVG charts
// are built by this package with their text escaped.
func writeHTML(w io.Writer, fx *facts) error {
	d := compose(fx)
	type hblock struct {
		block
		Chart template.HTML
	}
	type hsection struct {
		ID, Title string
		Blocks    []hblock
	}
	data := struct {
		*document
		Sections    []hsection
		CreditsHTML template.HTML
	}{document: d, CreditsHTML: template.HTML(geo.CreditsHTML)}
	for _, s := range d.Sections {
		hs := hsection{ID: s.ID, Title: s.Title}
		for _, b := range s.Blocks {
			hs.Blocks = append(hs.Blocks, hblock{block: b, Chart: template.HTML(b.SVG)})
		}
		data.Sections = append(data.Sections, hs)
	}
	return pageTemplate.Execute(w, data)
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"right": func(r []bool, i int) bool { return i < len(r) && r[i] },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Portcullis">
<title>{{.Title}}</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.summary{background:#f4f6f8;border-left:4px solid #1565c0;padding:.6rem 1rem;margin:1rem 0}
.summary p{margin:.4rem 0}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:.5rem 1rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.facts th{width:16rem;font-weight:600}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}
nav ol{columns:2;font-size:.92rem}
footer{margin-top:2rem;font-size:.8rem;color:#555}
@media print{nav{display:none}body{margin:0}}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<div class="summary">{{range .Summary}}<p>{{.}}</p>{{end}}</div>
<table class="facts">{{range .Glance}}<tr><th scope="row">{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
<nav><ol>{{range .Sections}}<li><a href="#{{.ID}}">{{.Title}}</a></li>{{end}}</ol></nav>
{{range .Sections}}<section id="{{.ID}}">
<h2>{{.Title}}</h2>
{{range .Blocks}}{{if eq .Kind 0}}<p>{{.Text}}</p>
{{else if eq .Kind 1}}<p class="note">{{.Text}}</p>
{{else if eq .Kind 2}}<ul>{{range .Items}}<li>{{.}}</li>{{end}}</ul>
{{else if eq .Kind 3}}{{$r := .Right}}<table><thead><tr>{{range $i, $h := .Head}}<th{{if right $r $i}} class="n"{{end}}>{{$h}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if right $r $i}} class="n"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</tbody></table>
{{else if eq .Kind 4}}<figure>{{.Chart}}<figcaption>{{.Alt}}</figcaption></figure>
{{else if eq .Kind 5}}<table class="facts">{{range .Rows}}<tr><th scope="row">{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
{{end}}{{end}}</section>
{{end}}{{if .Credits}}<footer>{{.CreditsHTML}}</footer>{{end}}
</body>
</html>
`))
