package report

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
)

// Charts are hand-written SVG 1.1: no scripts, no external resources, text
// escaped, every chart with a <title> and an aria-label so that a screen
// reader and a plain-text reader get the same facts as the picture. Figures
// are also in tables next to each chart.

const (
	chartW       = 720
	chartH       = 240
	padL, padR   = 64, 16
	padT, padB   = 16, 44
	maxBuckets   = 360 // at most this many x positions (one per 2 px)
	barRowHeight = 22
	// legendRowHeight is the height of each further row of the traffic
	// chart's legend.
	legendRowHeight = 14
)

// verdictSeries are the stacked layers of the traffic chart, bottom first.
var verdictSeries = []struct {
	name, color string
	get         func(*incident.SeriesPoint) uint64
}{
	{"passed", "#2e7d32", func(p *incident.SeriesPoint) uint64 { return p.Passed }},
	{"challenged", "#f9a825", func(p *incident.SeriesPoint) uint64 { return p.Challenged }},
	{"throttled", "#ef6c00", func(p *incident.SeriesPoint) uint64 { return p.Throttled }},
	{"blocked", "#c62828", func(p *incident.SeriesPoint) uint64 { return p.Blocked }},
	{"shed", "#6a1b9a", func(p *incident.SeriesPoint) uint64 { return p.Shed }},
}

var stateColors = map[incident.State]string{
	incident.StateSuspected:  "#fff3c4",
	incident.StateAttack:     "#fde0dc",
	incident.StateRecovering: "#e3f2fd",
}

type timeAxis struct {
	t0, t1 time.Time
}

func (a timeAxis) x(t time.Time) float64 {
	span := a.t1.Sub(a.t0)
	if span <= 0 {
		return padL
	}
	f := float64(t.Sub(a.t0)) / float64(span)
	return padL + math.Max(0, math.Min(1, f))*float64(chartW-padL-padR)
}

func y(v, vmax float64) float64 {
	if vmax <= 0 {
		return chartH - padB
	}
	return chartH - padB - v/vmax*float64(chartH-padT-padB)
}

// trafficChart draws traffic over time: the series stacked by verdict (or
// packets) when recorded, otherwise the rates the detectors reported in the
// timeline; the attack states as background bands.
func trafficChart(fx *facts) string {
	ax := timeAxis{fx.Start, fx.Until}
	if len(fx.Series) > 0 {
		ax.t0 = minTime(ax.t0, fx.Series[0].Time)
		ax.t1 = maxTime(ax.t1, fx.Series[len(fx.Series)-1].Time.Add(time.Second))
	}
	if !ax.t1.After(ax.t0) {
		ax.t1 = ax.t0.Add(time.Second)
	}
	var b strings.Builder
	label := "Traffic over time (UTC)"
	drawn := drawStates(&b, fx, ax)
	var vmax float64
	var unit string
	var legend [][2]string
	if len(fx.Series) > 0 {
		vmax, unit, legend = drawSeries(&b, fx.Series, ax)
	} else {
		vmax, unit, legend = drawTimelineRates(&b, fx, ax)
	}
	drawAxes(&b, ax, vmax, unit)
	for _, m := range []struct {
		t    time.Time
		name string
	}{{fx.Detected, "detected"}, {fx.End, "ended"}} {
		if m.t.IsZero() {
			continue
		}
		x := ax.x(m.t)
		tx, anchor := x+3, "start"
		if x > chartW-padR-60 {
			tx, anchor = x-3, "end"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="3,3"/><text x="%.1f" y="%d" fill="#333" text-anchor="%s">%s</text>`,
			x, padT, x, chartH-padB, tx, padT+10, anchor, m.name)
	}
	for _, st := range []struct {
		state incident.State
		name  string
	}{{incident.StateSuspected, "suspected"}, {incident.StateAttack, "under attack"}, {incident.StateRecovering, "recovering"}} {
		if drawn[st.state] { // a band the chart does not show has no legend
			legend = append(legend, [2]string{stateColors[st.state], st.name})
		}
	}
	// The legend wraps onto further rows (the chart grows) rather than
	// running off the right edge.
	lx, ly := float64(padL), chartH-12
	for _, l := range legend {
		w := 14 + float64(len(l[1]))*6 + 14
		if lx > padL && lx+w-14 > chartW {
			lx, ly = padL, ly+legendRowHeight
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="10" height="10" fill="%s" stroke="#999" stroke-width="0.5"/><text x="%.1f" y="%d">%s</text>`,
			lx, ly, l[0], lx+14, ly+9, html.EscapeString(l[1]))
		lx += w
	}
	var out strings.Builder
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s" font-family="sans-serif" font-size="11">`, chartW, ly+12, html.EscapeString(label))
	fmt.Fprintf(&out, `<title>%s</title>`, html.EscapeString(label))
	out.WriteString(b.String())
	out.WriteString(`</svg>`)
	return out.String()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// drawStates shades the intervals the site spent in each attack state
// within the axis' span, and returns the states it shaded.
func drawStates(b *strings.Builder, fx *facts, ax timeAxis) map[incident.State]bool {
	drawn := map[incident.State]bool{}
	var cur incident.State
	var since time.Time
	flush := func(until time.Time) {
		// Only the part inside the axis: a state that began after the
		// series ends (recovery after the last recorded second) is not
		// drawn as a sliver at the edge.
		from, to := maxTime(since, ax.t0), minTime(until, ax.t1)
		if c, ok := stateColors[cur]; ok && to.After(from) {
			x0, x1 := ax.x(from), ax.x(to)
			fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`, x0, padT, math.Max(x1-x0, 1), chartH-padT-padB, c)
			drawn[cur] = true
		}
	}
	for _, e := range fx.Events {
		if e.Kind != "state" {
			continue
		}
		flush(e.Time)
		cur, since = e.To, e.Time
	}
	flush(ax.t1) // the state the timeline ends in (normal: not shaded)
	return drawn
}

// drawSeries draws the per-second series, downsampled to at most
// maxBuckets columns (each the mean rate over its seconds), stacked by
// verdict; a packet-only series is drawn as one area.
func drawSeries(b *strings.Builder, series []incident.SeriesPoint, ax timeAxis) (vmax float64, unit string, legend [][2]string) {
	var httpSeen bool
	for i := range series {
		if series[i].Requests > 0 {
			httpSeen = true
			break
		}
	}
	layers := verdictSeries
	unit = "requests/s"
	if !httpSeen {
		layers = layers[:0:0]
		layers = append(layers, struct {
			name, color string
			get         func(*incident.SeriesPoint) uint64
		}{"packets", "#1565c0", func(p *incident.SeriesPoint) uint64 { return p.Packets }})
		unit = "packets/s"
	}
	n := min(len(series), maxBuckets)
	per := float64(len(series)) / float64(n)
	// sums[layer][bucket] as a mean rate per second.
	sums := make([][]float64, len(layers))
	for l := range sums {
		sums[l] = make([]float64, n)
	}
	counts := make([]float64, n)
	for i := range series {
		k := min(int(float64(i)/per), n-1)
		counts[k]++
		for l := range layers {
			sums[l][k] += float64(layers[l].get(&series[i]))
		}
	}
	tops := make([]float64, n)
	for k := 0; k < n; k++ {
		for l := range layers {
			sums[l][k] /= math.Max(counts[k], 1)
			tops[k] += sums[l][k]
		}
		vmax = math.Max(vmax, tops[k])
	}
	vmax = niceMax(vmax)
	xs := make([]float64, n+1)
	for k := 0; k <= n; k++ {
		i := min(int(float64(k)*per), len(series)-1)
		t := series[i].Time
		if k == n {
			t = series[len(series)-1].Time.Add(time.Second)
		}
		xs[k] = ax.x(t)
	}
	base := make([]float64, n)
	for l, layer := range layers {
		var used bool
		for k := 0; k < n; k++ {
			used = used || sums[l][k] > 0
		}
		if !used {
			continue
		}
		var pts strings.Builder
		for k := 0; k < n; k++ { // top edge, left to right, as steps
			top := base[k] + sums[l][k]
			fmt.Fprintf(&pts, "%.1f,%.1f %.1f,%.1f ", xs[k], y(top, vmax), xs[k+1], y(top, vmax))
		}
		for k := n - 1; k >= 0; k-- { // bottom edge back
			fmt.Fprintf(&pts, "%.1f,%.1f %.1f,%.1f ", xs[k+1], y(base[k], vmax), xs[k], y(base[k], vmax))
		}
		fmt.Fprintf(b, `<polygon points="%s" fill="%s" fill-opacity="0.85"/>`, strings.TrimSpace(pts.String()), layer.color)
		for k := range base {
			base[k] += sums[l][k]
		}
		legend = append(legend, [2]string{layer.color, layer.name})
	}
	if httpSeen {
		legend = drawOriginErrors(b, series, xs, per, vmax, legend)
	}
	return vmax, unit, legend
}

// originErrorColor draws the origin errors over the stacked verdicts.
const originErrorColor = "#212121"

// drawOriginErrors draws the requests the origin failed (a part of
// "passed") as a line over the stacked verdicts, bucketed like them, so
// that a flood the shield passed but the site could not answer does not
// read as traffic served. Nothing when the origin failed none.
func drawOriginErrors(b *strings.Builder, series []incident.SeriesPoint, xs []float64, per, vmax float64, legend [][2]string) [][2]string {
	n := len(xs) - 1
	errs, counts := make([]float64, n), make([]float64, n)
	var seen bool
	for i := range series {
		k := min(int(float64(i)/per), n-1)
		counts[k]++
		errs[k] += float64(series[i].OriginErrors)
		seen = seen || series[i].OriginErrors > 0
	}
	if !seen {
		return legend
	}
	var pts strings.Builder
	for k := 0; k < n; k++ {
		v := y(errs[k]/math.Max(counts[k], 1), vmax)
		fmt.Fprintf(&pts, "%.1f,%.1f %.1f,%.1f ", xs[k], v, xs[k+1], v)
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, strings.TrimSpace(pts.String()), originErrorColor)
	return append(legend, [2]string{originErrorColor, "origin errors (part of passed)"})
}

// drawTimelineRates plots the rates the detectors reported with each
// timeline event (evidence keys ending in "pps" or "rps"), and the peak.
func drawTimelineRates(b *strings.Builder, fx *facts, ax timeAxis) (vmax float64, unit string, legend [][2]string) {
	unit, peak := "requests/s", fx.PeakRPS
	if fx.Unit == "packets" {
		unit, peak = "packets/s", fx.PeakPPS
	}
	type pt struct {
		t time.Time
		v float64
	}
	var pts []pt
	for _, e := range fx.Events {
		if v, ok := eventRate(e.Evidence); ok {
			pts = append(pts, pt{e.Time, v})
		}
	}
	vmax = peak
	for _, p := range pts {
		vmax = math.Max(vmax, p.v)
	}
	vmax = niceMax(vmax)
	if peak > 0 {
		yy := y(peak, vmax)
		ly := yy - 3
		if ly < padT+14 { // under the line, clear of the "ended" mark at the top
			ly = yy + 12
		}
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c62828" stroke-dasharray="6,3"/><text x="%d" y="%.1f" fill="#c62828" text-anchor="end">peak %s %s</text>`,
			padL, yy, chartW-padR, yy, chartW-padR-2, ly, fmtRate(peak), unit)
		legend = append(legend, [2]string{"#c62828", "peak"})
	}
	if len(pts) > 0 {
		// Samples at changes of state, not a series: dots, not a line.
		for _, p := range pts {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#1565c0"/>`, ax.x(p.t), y(p.v, vmax))
		}
		legend = append(legend, [2]string{"#1565c0", "rate measured by the detectors"})
	}
	return vmax, unit, legend
}

// eventRate returns the largest rate among an event's evidence (keys
// ending in "pps" or "rps", thresholds excluded).
func eventRate(ev map[string]float64) (float64, bool) {
	var v float64
	var ok bool
	for k, x := range ev {
		if strings.Contains(k, "threshold") || !(strings.HasSuffix(k, "pps") || strings.HasSuffix(k, "rps")) {
			continue
		}
		if !ok || x > v {
			v, ok = x, true
		}
	}
	return v, ok
}

// niceMax rounds v up to 1, 2, 3, 4, 6 or 8 times a power of ten: the
// axis' quarter marks are then round numbers and the data fills at least
// two thirds of its height.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 3, 4, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func drawAxes(b *strings.Builder, ax timeAxis, vmax float64, unit string) {
	x0, x1, y0 := float64(padL), float64(chartW-padR), float64(chartH-padB)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/><line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#333"/>`, x0, y0, x1, y0, x0, padT, x0, y0)
	for i := 0; i <= 4; i++ {
		v := vmax * float64(i) / 4
		yy := y(v, vmax)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc" stroke-width="0.5"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, x0, yy, x1, yy, x0-4, yy+4, fmtRate(v))
	}
	fmt.Fprintf(b, `<text transform="translate(12 %d) rotate(-90)" text-anchor="middle">%s</text>`, (padT+chartH-padB)/2, html.EscapeString(unit))
	for _, t := range timeTicks(ax) {
		x := ax.x(t)
		anchor := "middle"
		switch {
		case x-x0 < 30:
			anchor = "start"
		case x1-x < 30:
			anchor = "end"
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/><text x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, x, y0, x, y0+4, x, y0+15, anchor, fmtClock(t))
	}
}

// tickSteps are the time axis' tick intervals, finest first.
var tickSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// timeTicks returns the time axis' tick instants: at most six, on whole
// multiples (UTC) of the finest step in tickSteps that allows it, so that
// labels read 21:07:00, 21:07:30… rather than arbitrary fifths of the span.
// A span shorter than two seconds gets its two ends and its middle.
func timeTicks(ax timeAxis) []time.Time {
	span := ax.t1.Sub(ax.t0)
	if span < 2*time.Second {
		return []time.Time{ax.t0, ax.t0.Add(span / 2), ax.t1}
	}
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if span/s <= 5 {
			step = s
			break
		}
	}
	var out []time.Time
	for t := ax.t0.Truncate(step); !t.After(ax.t1); t = t.Add(step) {
		if !t.Before(ax.t0) {
			out = append(out, t)
		}
	}
	if k := (len(out) + 5) / 6; k > 1 { // spans of many days: every k-th day
		thin := out[:0]
		for i := 0; i < len(out); i += k {
			thin = append(thin, out[i])
		}
		out = thin
	}
	return out
}

// barChart draws the top rows of an attribution list as horizontal bars
// labelled with their share of the incident's traffic.
func barChart(title string, rows []share, limit int) string {
	if len(rows) > limit {
		rows = rows[:limit]
	}
	h := padT + len(rows)*barRowHeight + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s" font-family="sans-serif" font-size="11">`, chartW, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(title))
	var top float64
	for _, r := range rows {
		top = math.Max(top, r.Share)
	}
	const labelW, barX = 250, 256
	barMax := float64(chartW - barX - 60)
	for i, r := range rows {
		yy := padT + i*barRowHeight
		w := 0.0
		if top > 0 {
			w = math.Max(1, r.Share/top*barMax)
		}
		lbl := r.Label
		if len([]rune(lbl)) > 36 {
			lbl = string([]rune(lbl)[:35]) + "…"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text><rect x="%d" y="%d" width="%.1f" height="%d" fill="#1565c0"/><text x="%.1f" y="%d">%s</text>`,
			labelW, yy+14, html.EscapeString(lbl), barX, yy+3, w, barRowHeight-6, float64(barX)+w+4, yy+14, html.EscapeString(pct(r.Share)))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
