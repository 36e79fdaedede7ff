package console

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Charts are drawn from the data as SVG: a chart is geometry the templates
// turn into elements, in a fixed viewBox the page scales.

const (
	chartW, chartH         = 720.0, 240.0
	padLeft, padRight      = 56.0, 12.0
	padTop, padBottom      = 12.0, 28.0
	plotW, plotH           = chartW - padLeft - padRight, chartH - padTop - padBottom
	maxXLabels, yTickCount = 8, 4
)

type bar struct {
	X, Y, W, H float64
	Date       string
	Value      int64
}

type tick struct {
	Pos   float64
	Label string
}

type series struct {
	Name   string
	Class  string
	Points string // "x,y x,y ..." for a polyline
	Last   string // the last value, for the legend
}

// chart is one SVG chart: bars (usage per day) or lines (rates).
type chart struct {
	W, H, Left, Top, Bottom, Right float64
	Bars                           []bar
	Lines                          []series
	YTicks                         []tick
	XTicks                         []tick
	Total                          int64
}

func newChart() chart {
	return chart{W: chartW, H: chartH, Left: padLeft, Top: padTop, Bottom: chartH - padBottom, Right: chartW - padRight}
}

// niceMax rounds m up to 1, 2 or 5 times a power of ten (at least 1), so
// the axis ticks are round numbers.
func niceMax(m float64) float64 {
	if m <= 1 || math.IsNaN(m) || math.IsInf(m, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(m)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*p >= m {
			return f * p
		}
	}
	return 10 * p
}

func formatNum(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func (c *chart) yTicks(top float64) {
	for i := 0; i <= yTickCount; i++ {
		v := top * float64(i) / yTickCount
		c.YTicks = append(c.YTicks, tick{Pos: c.Bottom - plotH*float64(i)/yTickCount, Label: formatNum(v)})
	}
}

// usageChart draws one bar per day from start: values[i] is the requests
// counted on day start+i.
func usageChart(start time.Time, values []int64) chart {
	c := newChart()
	var top int64
	for _, v := range values {
		top = max(top, v)
		c.Total += v
	}
	ymax := niceMax(float64(top))
	c.yTicks(ymax)
	n := len(values)
	if n == 0 {
		return c
	}
	slot := plotW / float64(n)
	every := (n + maxXLabels - 1) / maxXLabels
	for i, v := range values {
		h := plotH * float64(v) / ymax
		day := start.AddDate(0, 0, i).Format(time.DateOnly)
		c.Bars = append(c.Bars, bar{X: padLeft + slot*float64(i) + slot*0.1, Y: c.Bottom - h, W: slot * 0.8, H: h, Date: day, Value: v})
		if i%every == 0 {
			c.XTicks = append(c.XTicks, tick{Pos: padLeft + slot*(float64(i)+0.5), Label: day[5:]})
		}
	}
	return c
}

// rateChart draws the admitted and refused rates of the hour before now.
func rateChart(now time.Time, pts []ratePoint) chart {
	c := newChart()
	var top float64
	for _, p := range pts {
		top = max(top, p.Admitted, p.Refused)
	}
	ymax := niceMax(top)
	c.yTicks(ymax)
	from := now.Add(-rateWindow)
	x := func(t time.Time) float64 { return padLeft + plotW*t.Sub(from).Seconds()/rateWindow.Seconds() }
	y := func(v float64) float64 { return c.Bottom - plotH*v/ymax }
	var adm, ref strings.Builder
	for _, p := range pts {
		fmt.Fprintf(&adm, "%.1f,%.1f ", x(p.At), y(p.Admitted))
		fmt.Fprintf(&ref, "%.1f,%.1f ", x(p.At), y(p.Refused))
	}
	last := func(f func(ratePoint) float64) string {
		if len(pts) == 0 {
			return "–"
		}
		return formatNum(math.Round(f(pts[len(pts)-1])*100) / 100)
	}
	c.Lines = []series{
		{Name: "admitted", Class: "admitted", Points: strings.TrimSpace(adm.String()), Last: last(func(p ratePoint) float64 { return p.Admitted })},
		{Name: "refused", Class: "refused", Points: strings.TrimSpace(ref.String()), Last: last(func(p ratePoint) float64 { return p.Refused })},
	}
	for m := 60; m >= 0; m -= 10 {
		c.XTicks = append(c.XTicks, tick{Pos: x(now.Add(-time.Duration(m) * time.Minute)), Label: fmt.Sprintf("-%dm", m)})
	}
	c.XTicks[len(c.XTicks)-1].Label = "now"
	return c
}
