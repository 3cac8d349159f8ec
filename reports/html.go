package reports

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// HTML writes the report as one self-contained page: no scripts, no
// external fonts, styles or images (a Content-Security-Policy says so), the
// charts inline SVG.
func HTML(w io.Writer, r *Report) error {
	secs := sections(r)
	data := struct {
		R        *Report
		Class    string
		Sections []section
		Spectrum template.HTML
		Hours    template.HTML
		Confuse  []template.HTML
		Cost     template.HTML
		Rollout  template.HTML
		Counting string
	}{R: r, Counting: countingLine, Class: strings.ToLower(strings.ReplaceAll(r.Verdict, "-", "")), Sections: secs[1:],
		Spectrum: spectrumSVG(r), Hours: hoursSVG(r), Cost: costSVG(r), Rollout: rolloutSVG(r)}
	for _, p := range r.Providers {
		if p.Accuracy != nil && (p.Name == r.Candidate || p.Name == r.Baseline) {
			data.Confuse = append(data.Confuse, confusionSVG(p))
		}
	}
	return page.Execute(w, data)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"gateValue": func(g GateResult) []string { v, i, t := gateValue(g); return []string{v, i, t} },
	"lower":     strings.ToLower,
	"n":         func(v int) string { return thousands(float64(v)) },
	"n64":       func(v int64) string { return thousands(float64(v)) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cutover report: {{.R.Verdict}} — {{.R.Candidate}} vs {{.R.Baseline}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
.verdict{display:inline-block;padding:6px 14px;border-radius:6px;font-weight:700;font-size:20px;color:#fff}
.go{background:#1e8e3e}.nogo{background:#c5221f}.inconclusive{background:#b06000}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #dde;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f5f9}td.PASS{background:#e6f4ea;font-weight:600}td.FAIL{background:#fce8e6;font-weight:600}td.INCONCLUSIVE{background:#fef7e0;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:18px}.chart{border:1px solid #dde;border-radius:6px;padding:8px}
.muted{color:#5f6675}svg text{font:11px system-ui,sans-serif;fill:#1d2330}
</style></head><body>
<h1>cutover go/no-go report</h1>
<p><span class="verdict {{.Class}}">{{.R.Verdict}}</span> &nbsp; {{.R.VerdictReason}}</p>
<p>Candidate <b>{{.R.Candidate}}</b> against baseline <b>{{.R.Baseline}}</b>. {{n64 .R.Observations}} observations; hours in {{.R.TimeZone}}; every interval is 95 %. Generated {{.R.Generated.Format "2006-01-02 15:04:05 UTC"}}.</p>
<h2>Gates</h2>
<table><tr><th>gate</th><th>status</th><th>value</th><th>95 % interval</th><th>threshold</th><th>n</th><th>note</th></tr>
{{range .R.Gates}}{{$v := gateValue .}}<tr><td>{{.Description}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{index $v 0}}</td><td>{{index $v 1}}</td><td>{{index $v 2}}</td><td>{{n .N}}</td><td>{{.Note}}</td></tr>
{{else}}<tr><td colspan="7">no gates configured</td></tr>{{end}}</table>
<h2>Charts</h2>
<div class="charts">
<div class="chart">{{.Spectrum}}</div>
<div class="chart">{{.Hours}}</div>
<div class="chart">{{.Cost}}</div>
{{if .Rollout}}<div class="chart">{{.Rollout}}</div>{{end}}
{{range .Confuse}}<div class="chart">{{.}}</div>{{end}}
</div>
{{range .Sections}}{{if .Rows}}<h2>{{.Title}}</h2>
<table><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}{{end}}
<p class="muted">{{.Counting}}</p>
{{if .R.Notes}}<h2>Notes</h2><ul>{{range .R.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Runs</h2>
<table><tr><th>run directory</th><th>kind</th><th>mode</th><th>started</th><th>config digest</th></tr>
{{range .R.Runs}}<tr><td>{{.Path}}</td><td>{{.Kind}}</td><td>{{.Mode}}</td><td>{{.Started.UTC.Format "2006-01-02 15:04:05"}}</td><td class="muted">{{printf "%.12s" .ConfigDigest}}</td></tr>
{{end}}</table>
</body></html>
`))

// Exported field names for the template (section's are lower case).
func (s section) Title() string    { return s.title }
func (s section) Header() []string { return s.header }
func (s section) Rows() [][]string { return s.rows }

var palette = []string{"#1a73e8", "#d93025", "#188038", "#9334e6", "#e8710a", "#795548"}

type frame struct {
	w, h, left, right, top, bottom float64
	b                              strings.Builder
}

func newFrame(w, h float64, title string) *frame {
	f := &frame{w: w, h: h, left: 56, right: 28, top: 28, bottom: 40}
	fmt.Fprintf(&f.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s">`, w, h, w, h, html.EscapeString(title))
	fmt.Fprintf(&f.b, `<text x="8" y="16" style="font-weight:600;font-size:12px">%s</text>`, html.EscapeString(title))
	return f
}

func (f *frame) px(x, x0, x1 float64) float64 {
	if x1 == x0 {
		return f.left
	}
	return f.left + (x-x0)/(x1-x0)*(f.w-f.left-f.right)
}

func (f *frame) py(y, y0, y1 float64) float64 {
	if y1 == y0 {
		return f.h - f.bottom
	}
	return f.h - f.bottom - (y-y0)/(y1-y0)*(f.h-f.top-f.bottom)
}

func (f *frame) axes(xlabel, ylabel string) {
	x0, y0, x1, y1 := f.left, f.h-f.bottom, f.w-f.right, f.top
	fmt.Fprintf(&f.b, `<path d="M%g %gV%gH%g" fill="none" stroke="#889"/>`, x0, y1, y0, x1)
	fmt.Fprintf(&f.b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`, (x0+x1)/2, f.h-6, html.EscapeString(xlabel))
	fmt.Fprintf(&f.b, `<text transform="translate(12 %g) rotate(-90)" text-anchor="middle">%s</text>`, (y0+y1)/2, html.EscapeString(ylabel))
}

func (f *frame) legend(names []string) {
	x := f.left + 8
	for i, n := range names {
		fmt.Fprintf(&f.b, `<rect x="%g" y="%g" width="10" height="10" fill="%s"/><text x="%g" y="%g">%s</text>`,
			x, f.top+4, palette[i%len(palette)], x+14, f.top+13, html.EscapeString(n))
		x += 24 + 7*float64(len(n))
	}
}

func (f *frame) done() template.HTML {
	f.b.WriteString("</svg>")
	return template.HTML(f.b.String()) // built from escaped parts only
}

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// spectrumSVG is the latency percentile spectrum: x is log10(1/(1−p)),
// labelled 0 %, 90 %, 99 %, 99.9 % …, as HdrHistogram's plotter draws it.
func spectrumSVG(r *Report) template.HTML {
	f := newFrame(560, 300, "Latency by percentile (HdrHistogram spectrum)")
	maxX, maxY := 1.0, 0.0
	var names []string
	for _, p := range r.Providers {
		for _, s := range p.Latency.Spectrum {
			if s.Percentile < 100 {
				maxX = math.Max(maxX, math.Log10(100/(100-s.Percentile)))
			}
			maxY = math.Max(maxY, s.Ms)
		}
		names = append(names, p.Name)
	}
	maxX = math.Ceil(maxX - 1e-6)
	maxY = niceMax(maxY)
	for d := 0.0; d <= maxX; d++ {
		x := f.px(d, 0, maxX)
		label := fmt.Sprintf("%.*f%%", max(int(d)-2, 0), 100-100/math.Pow(10, d))
		fmt.Fprintf(&f.b, `<line x1="%g" x2="%g" y1="%g" y2="%g" stroke="#eef"/><text x="%g" y="%g" text-anchor="middle">%s</text>`,
			x, x, f.top, f.h-f.bottom, x, f.h-f.bottom+14, label)
	}
	yTicks(f, 0, maxY, "")
	for i, p := range r.Providers {
		var pts []string
		for _, s := range p.Latency.Spectrum {
			if s.Percentile >= 100 {
				continue
			}
			x := math.Log10(100 / (100 - s.Percentile))
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", f.px(x, 0, maxX), f.py(s.Ms, 0, maxY)))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&f.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), palette[i%len(palette)])
		}
	}
	f.axes("percentile", "latency (ms)")
	f.legend(names)
	return f.done()
}

func yTicks(f *frame, y0, y1 float64, suffix string) {
	for i := 0; i <= 4; i++ {
		v := y0 + (y1-y0)*float64(i)/4
		y := f.py(v, y0, y1)
		fmt.Fprintf(&f.b, `<line x1="%g" x2="%g" y1="%g" y2="%g" stroke="#eef"/><text x="%g" y="%g" text-anchor="end">%s%s</text>`,
			f.left, f.w-f.right, y, y, f.left-4, y+4, msf(v), suffix)
	}
}

// hoursSVG draws p99 by hour of day, one line per provider.
func hoursSVG(r *Report) template.HTML {
	f := newFrame(560, 300, "p99 latency by hour of day ("+r.TimeZone+")")
	maxY := 0.0
	var names []string
	for _, p := range r.Providers {
		for _, h := range p.ByHour {
			maxY = math.Max(maxY, h.P99)
		}
		names = append(names, p.Name)
	}
	maxY = niceMax(maxY)
	for h := 0; h < 24; h += 3 {
		x := f.px(float64(h), 0, 23)
		fmt.Fprintf(&f.b, `<text x="%g" y="%g" text-anchor="middle">%02d</text>`, x, f.h-f.bottom+14, h)
	}
	yTicks(f, 0, maxY, "")
	for i, p := range r.Providers {
		c := palette[i%len(palette)]
		var pts []string
		for _, h := range p.ByHour {
			x, y := f.px(float64(h.Hour), 0, 23), f.py(h.P99, 0, maxY)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			fmt.Fprintf(&f.b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %02d:00 p99 %s ms (n=%d)</title></circle>`,
				x, y, c, html.EscapeString(p.Name), h.Hour, msf(h.P99), h.Count)
		}
		if len(pts) > 1 {
			fmt.Fprintf(&f.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), c)
		}
	}
	f.axes("hour of day", "p99 (ms)")
	f.legend(names)
	return f.done()
}

// costSVG draws projected monthly cost bars with their intervals.
func costSVG(r *Report) template.HTML {
	f := newFrame(560, 300, fmt.Sprintf("Projected monthly cost (USD, %s images a day)", thousands(r.Settings["daily_volume"])))
	var ps []*ProviderReport
	maxY := 0.0
	for _, p := range r.Providers {
		if p.Cost != nil {
			ps = append(ps, p)
			maxY = math.Max(maxY, p.Cost.MonthlyHiUSD)
		}
	}
	maxY = niceMax(maxY)
	yTicks(f, 0, maxY, "")
	bw := (f.w - f.left - f.right) / float64(max(len(ps), 1))
	for i, p := range ps {
		c := p.Cost
		x := f.left + float64(i)*bw + bw*0.2
		y := f.py(c.MonthlyUSD, 0, maxY)
		fmt.Fprintf(&f.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s USD a month</title></rect>`,
			x, y, bw*0.6, f.h-f.bottom-y, palette[i%len(palette)], html.EscapeString(p.Name), money(c.MonthlyUSD))
		if c.MonthlyHiUSD > c.MonthlyLoUSD {
			cx := x + bw*0.3
			fmt.Fprintf(&f.b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#333"/>`, cx, f.py(c.MonthlyLoUSD, 0, maxY), f.py(c.MonthlyHiUSD, 0, maxY),
				cx-5, f.py(c.MonthlyLoUSD, 0, maxY), cx+5, cx-5, f.py(c.MonthlyHiUSD, 0, maxY), cx+5)
		}
		fmt.Fprintf(&f.b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
			x+bw*0.3, f.h-f.bottom+14, html.EscapeString(p.Name), x+bw*0.3, y-4, money(c.MonthlyUSD))
	}
	f.axes("", "USD a month")
	return f.done()
}

// confusionSVG is a heat map of the most frequent true categories: each
// row is a true category, shaded by the share of its images predicted as
// each column; "other" gathers the rest.
func confusionSVG(p *ProviderReport) template.HTML {
	const top = 14
	a := p.Accuracy
	type cat struct {
		name string
		n    int
	}
	var cats []cat
	for _, m := range a.PerCategory {
		if m.Support > 0 {
			cats = append(cats, cat{m.Category, m.Support})
		}
	}
	sort.Slice(cats, func(i, j int) bool {
		if cats[i].n != cats[j].n {
			return cats[i].n > cats[j].n
		}
		return cats[i].name < cats[j].name
	})
	if len(cats) > top {
		cats = cats[:top]
	}
	cols := make([]string, 0, len(cats)+1)
	idx := map[string]int{}
	for i, c := range cats {
		cols = append(cols, c.name)
		idx[c.name] = i
	}
	cols = append(cols, "other")
	cell, labelW, headH := 22.0, 150.0, 110.0
	w := math.Max(labelW+cell*float64(len(cols))+20, 420)
	h := headH + cell*float64(len(cats)) + 30
	f := newFrame(w, h, fmt.Sprintf("Confusion: %s (top %d true categories)", p.Name, len(cats)))
	short := func(s string) string {
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			return s[i+1:]
		}
		return s
	}
	for j, c := range cols {
		x := labelW + cell*float64(j) + cell/2
		fmt.Fprintf(&f.b, `<text transform="translate(%.1f %.1f) rotate(-60)">%s</text>`, x, headH-4, html.EscapeString(short(c)))
	}
	for i, c := range cats {
		row := a.Confusion[c.name]
		counts := make([]int, len(cols))
		for pred, n := range row {
			if j, ok := idx[pred]; ok {
				counts[j] += n
			} else {
				counts[len(cols)-1] += n
			}
		}
		y := headH + cell*float64(i)
		fmt.Fprintf(&f.b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, labelW-6, y+cell*0.7, html.EscapeString(short(c.name)))
		for j, n := range counts {
			share := float64(n) / float64(c.n)
			fill := "#ffffff"
			if n > 0 {
				// white → deep blue on the diagonal, → red elsewhere.
				t := math.Sqrt(share)
				if j == i {
					fill = fmt.Sprintf("rgb(%d,%d,%d)", int(255-t*229), int(255-t*140), int(255-t*23))
				} else {
					fill = fmt.Sprintf("rgb(%d,%d,%d)", int(255-t*38), int(255-t*207), int(255-t*216))
				}
			}
			fmt.Fprintf(&f.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="#e3e5ec"><title>%s → %s: %d of %d (%.1f %%)</title></rect>`,
				labelW+cell*float64(j), y, cell, cell, fill, html.EscapeString(c.name), html.EscapeString(cols[j]), n, c.n, 100*share)
		}
	}
	return f.done()
}

// rolloutSVG draws the canary's share over time from the runs' canary_*
// events (a step line; rollbacks marked in red), or nothing without them.
func rolloutSVG(r *Report) template.HTML {
	type pt struct {
		t        time.Time
		pct      float64
		rollback bool
	}
	var pts []pt
	for _, e := range r.Timeline {
		if !strings.HasPrefix(e.Kind, "canary_") {
			continue
		}
		v, ok := e.Data["percent"].(float64)
		if !ok {
			continue
		}
		if len(pts) == 0 {
			if from, ok := e.Data["from"].(float64); ok {
				pts = append(pts, pt{t: e.Time.Add(-time.Second), pct: from})
			}
		}
		pts = append(pts, pt{t: e.Time, pct: v, rollback: e.Kind == "canary_rollback"})
	}
	if len(pts) == 0 {
		return ""
	}
	end := pts[len(pts)-1].t.Add(time.Second)
	for _, e := range r.Timeline {
		if e.Time.After(end) {
			end = e.Time
		}
	}
	f := newFrame(560, 300, "Canary share over time (timeline of the rollout)")
	t0 := pts[0].t
	span := end.Sub(t0).Seconds()
	x := func(t time.Time) float64 { return f.px(t.Sub(t0).Seconds(), 0, span) }
	yTicks(f, 0, 100, "%")
	var d strings.Builder
	for i, p := range pts {
		y := f.py(p.pct, 0, 100)
		if i == 0 {
			fmt.Fprintf(&d, "M%.1f %.1f", x(p.t), y)
		} else {
			fmt.Fprintf(&d, "H%.1fV%.1f", x(p.t), y)
		}
		if p.rollback {
			fmt.Fprintf(&f.b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"><title>rollback at %s</title></circle>`, x(p.t), y, palette[1], p.t.UTC().Format("15:04:05"))
		}
	}
	fmt.Fprintf(&d, "H%.1f", x(end))
	fmt.Fprintf(&f.b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`, d.String(), palette[0])
	fmt.Fprintf(&f.b, `<text x="%.1f" y="%.1f">%s</text><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`,
		f.left, f.h-f.bottom+14, t0.UTC().Format("15:04:05"), f.w-f.right, f.h-f.bottom+14, end.UTC().Format("15:04:05 UTC"))
	f.axes("time", "answered by the candidate")
	return f.done()
}
