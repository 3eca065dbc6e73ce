package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// A small SVG line-chart renderer for the HTML report: no scripts, no
// external assets, so the report is one file that opens anywhere.

type line struct {
	name  string
	color string
	xs    []float64
	ys    []float64
	dash  bool
}

type tick struct {
	v     float64
	label string
}

type chart struct {
	title, xLabel, yLabel string
	lines                 []line
	logY                  bool
	// xTicks, when set, replaces the computed x ticks (categorical axes).
	xTicks []tick
	// yMaxAtLeast keeps a reference (such as the machine's cores) in view.
	yMaxAtLeast float64
}

const (
	chartW, chartH               = 560, 320
	padL, padR, padT, padB       = 62, 16, 34, 66
	plotW                        = chartW - padL - padR
	plotH                        = chartH - padT - padB
	fontAxis, fontTitle, fontLeg = 11, 14, 11
)

// niceStep picks a round step (1, 2 or 5 × 10^k) giving about n ticks.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func fmtTick(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trimZeros(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case a >= 1e4:
		return trimZeros(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return trimZeros(fmt.Sprintf("%.1f", v))
	case a >= 0.01:
		return trimZeros(fmt.Sprintf("%.2f", v))
	}
	return trimZeros(fmt.Sprintf("%.3f", v))
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func (c chart) svg() string {
	var b strings.Builder
	esc := html.EscapeString
	// Ranges.
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, l := range c.lines {
		for i := range l.xs {
			y := l.ys[i]
			if c.logY && y <= 0 {
				continue
			}
			xmin, xmax = math.Min(xmin, l.xs[i]), math.Max(xmax, l.xs[i])
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	for _, t := range c.xTicks {
		xmin, xmax = math.Min(xmin, t.v), math.Max(xmax, t.v)
	}
	empty := math.IsInf(xmin, 1)
	if empty {
		xmin, xmax, ymin, ymax = 0, 1, 0, 1
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	ymax = math.Max(ymax, c.yMaxAtLeast)
	var yticks []tick
	if c.logY {
		lo := math.Floor(math.Log10(math.Max(ymin, 1e-3)))
		hi := math.Ceil(math.Log10(math.Max(ymax, 1e-3)))
		if hi == lo {
			hi++
		}
		ymin, ymax = math.Pow(10, lo), math.Pow(10, hi)
		for e := lo; e <= hi; e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if v <= ymax*1.0001 && (m == 1 || hi-lo <= 3) {
					yticks = append(yticks, tick{v, fmtTick(v)})
				}
			}
		}
	} else {
		ymin = 0
		if ymax <= 0 {
			ymax = 1
		}
		step := niceStep(ymax, 5)
		ymax = math.Ceil(ymax/step) * step
		for v := 0.0; v <= ymax*1.0001; v += step {
			yticks = append(yticks, tick{v, fmtTick(v)})
		}
	}
	xticks := c.xTicks
	if xticks == nil {
		step := niceStep(xmax-xmin, 6)
		for v := math.Ceil(xmin/step) * step; v <= xmax*1.0001; v += step {
			xticks = append(xticks, tick{v, fmtTick(v)})
		}
	}
	px := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*plotW }
	py := func(y float64) float64 {
		if c.logY {
			y = math.Max(y, ymin)
			return padT + plotH - (math.Log10(y)-math.Log10(ymin))/(math.Log10(ymax)-math.Log10(ymin))*plotH
		}
		return padT + plotH - (y-ymin)/(ymax-ymin)*plotH
	}

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, esc(c.title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="%d" font-weight="600" fill="#222">%s</text>`, padL, fontTitle, esc(c.title))
	// Grid and ticks.
	for _, t := range yticks {
		y := py(t.v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e6e6e6"/>`, padL, padL+plotW, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" text-anchor="end" fill="#555">%s</text>`, padL-6, y+4, fontAxis, esc(t.label))
	}
	for _, t := range xticks {
		x := px(t.v)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#f0f0f0"/>`, x, x, padT, padT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="%d" text-anchor="middle" fill="#555">%s</text>`, x, padT+plotH+16, fontAxis, esc(t.label))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, padL, padT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" text-anchor="middle" fill="#333">%s</text>`, padL+plotW/2, padT+plotH+32, fontAxis, esc(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" font-size="%d" text-anchor="middle" fill="#333">%s</text>`, padT+plotH/2, fontAxis, esc(c.yLabel))
	if empty {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" text-anchor="middle" fill="#999">no data</text>`, padL+plotW/2, padT+plotH/2, fontTitle)
	}
	// Lines.
	for _, l := range c.lines {
		var pts []string
		for i := range l.xs {
			if c.logY && l.ys[i] <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.xs[i]), py(l.ys[i])))
		}
		if len(pts) == 0 {
			continue
		}
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`, l.color, dash, strings.Join(pts, " "))
		if len(pts) <= 16 {
			for _, p := range pts {
				x, y, _ := strings.Cut(p, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, x, y, l.color)
			}
		}
	}
	// Legend, in a row under the plot, where no line can cross it.
	lx := padL
	for _, l := range c.lines {
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		y := chartH - 12
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>`, lx, lx+18, y-4, y-4, l.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" fill="#333">%s</text>`, lx+23, y, fontLeg, esc(l.name))
		lx += 23 + 7*len([]rune(l.name)) + 18
	}
	b.WriteString(`</svg>`)
	return b.String()
}
