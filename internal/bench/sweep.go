package bench

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// DefaultSweep is the concurrency the sweep raises through.
var DefaultSweep = []int{5, 10, 20, 40, 60, 80, 120, 160, 240, 320}

// KneeGain is the least throughput gain of the baseline from one level to
// the next that still counts as gaining.
const KneeGain = 0.05

// Sweep is a run of both pipelines at rising concurrency, on one server.
type Sweep struct {
	Points []Point `json:"points"`
	// Knee is the concurrency past which the bare baseline gained less than
	// KneeGain (0: it never stopped gaining within the levels given).
	Knee int       `json:"knee"`
	Runs []*Result `json:"runs"`
}

// Point is one concurrency's figures, both sides.
type Point struct {
	Concurrency int     `json:"concurrency"`
	Posts       int     `json:"posts"`
	Countersign Side    `json:"countersign"`
	Baseline    Side    `json:"baseline"`
	Ratio       float64 `json:"throughput_ratio"`
	Error       string  `json:"error,omitempty"`
}

// Side is one pipeline at one concurrency.
type Side struct {
	PostsPerSecond       float64 `json:"posts_per_second"`
	LatenessP99          float64 `json:"publish_lateness_p99_ms"`
	WorkflowTaskTimeouts int     `json:"workflow_task_timeouts"`
	Failed               int     `json:"failed"`
	Expired              int     `json:"expired"`
	ExpiredInTime        int     `json:"expired_after_timely_approval"`
}

func side(p *Pipeline) Side {
	if p == nil {
		return Side{}
	}
	return Side{PostsPerSecond: p.PostsPerSecond, LatenessP99: p.Latency["publish lateness"].P99,
		WorkflowTaskTimeouts: p.History.WorkflowTaskTimeouts, Failed: p.Failed, Expired: p.Expired, ExpiredInTime: p.ExpiredAfterTimelyApproval}
}

// RunSweep starts one environment and runs the baseline and Countersign at
// each concurrency of levels in turn, until the baseline gains less than
// KneeGain over the level before. Posts that fail at a level are figures,
// not an error; a duplicate delivery is an error.
func RunSweep(ctx context.Context, o Options, levels []int) (*Sweep, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if len(levels) == 0 {
		levels = DefaultSweep
	}
	o.SkipBaseline = false
	e, stop, err := start(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer stop()
	sw := &Sweep{}
	var errs []error
	for _, c := range levels {
		// At least twice c posts, so that the steady state outweighs the ramp.
		res, err := e.point(ctx, o, c, max(o.Posts, 2*c))
		if res == nil {
			return sw, err
		}
		pt := Point{Concurrency: c, Posts: res.Posts, Countersign: side(res.Countersign), Baseline: side(res.Baseline), Ratio: res.ThroughputRatio}
		if err != nil {
			pt.Error = err.Error()
		}
		if res.Countersign.Duplicates > 0 {
			errs = append(errs, fmt.Errorf("concurrency %d: %d duplicate deliveries", c, res.Countersign.Duplicates))
		}
		sw.Points = append(sw.Points, pt)
		sw.Runs = append(sw.Runs, res)
		if n := len(sw.Points); n >= 2 {
			prev := sw.Points[n-2].Baseline.PostsPerSecond
			if prev > 0 && pt.Baseline.PostsPerSecond < prev*(1+KneeGain) {
				sw.Knee = sw.Points[n-2].Concurrency
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return sw, errors.Join(errs...)
}

// Print writes the sweep as one table.
func (s *Sweep) Print(w io.Writer) {
	fmt.Fprintf(w, "\nSweep: throughput and publish lateness p99 per concurrency, both on one server\n")
	fmt.Fprintf(w, "  %5s %6s | %9s %9s %6s | %11s %11s | %9s %8s %8s %7s\n", "conc", "posts",
		"cs post/s", "bare /s", "ratio", "cs late p99", "bare p99", "WFT t/o", "expired", "in time", "failed")
	for _, p := range s.Points {
		fmt.Fprintf(w, "  %5d %6d | %9.2f %9.2f %6.2f | %8.0f ms %8.0f ms | %4d/%-4d %8d %8d %7d\n",
			p.Concurrency, p.Posts, p.Countersign.PostsPerSecond, p.Baseline.PostsPerSecond, p.Ratio,
			p.Countersign.LatenessP99, p.Baseline.LatenessP99,
			p.Countersign.WorkflowTaskTimeouts, p.Baseline.WorkflowTaskTimeouts,
			p.Countersign.Expired, p.Countersign.ExpiredInTime, p.Countersign.Failed)
	}
	fmt.Fprintln(w, "  WFT t/o: WorkflowTaskTimedOut events, countersign/bare; expired: Countersign posts that expired; in time: those of them whose last approval was sent before their scheduled time")
	if s.Knee > 0 {
		fmt.Fprintf(w, "  knee: the bare baseline gains less than %.0f%% past concurrency %d\n", KneeGain*100, s.Knee)
	} else {
		fmt.Fprintln(w, "  knee: not reached (the baseline still gained at the last level)")
	}
}

// WritePlot draws the sweep's two curves — throughput, and publish lateness
// p99, per concurrency, Countersign beside the baseline — as a small PNG.
func (s *Sweep) WritePlot(path, title string) error {
	thr, late := plot.New(), plot.New()
	thr.Title.Text, late.Title.Text = "throughput (delivered posts)", "publish lateness p99"
	thr.Y.Label.Text, late.Y.Label.Text = "posts/s", "ms"
	for _, p := range []*plot.Plot{thr, late} {
		p.X.Label.Text = "concurrency"
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		p.Y.Min = 0
	}
	lines := []struct {
		name  string
		color color.Color
		get   func(Point) Side
	}{
		{"countersign", color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, func(p Point) Side { return p.Countersign }},
		{"bare Temporal", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, func(p Point) Side { return p.Baseline }},
	}
	for _, l := range lines {
		var a, b plotter.XYs
		for _, p := range s.Points {
			x := float64(p.Concurrency)
			a = append(a, plotter.XY{X: x, Y: l.get(p).PostsPerSecond})
			b = append(b, plotter.XY{X: x, Y: l.get(p).LatenessP99})
		}
		for _, pair := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{thr, a}, {late, b}} {
			ln, pts, err := plotter.NewLinePoints(pair.xys)
			if err != nil {
				return err
			}
			ln.Color, pts.Color = l.color, l.color
			pts.Shape = draw.CircleGlyph{}
			pair.p.Add(ln, pts)
			pair.p.Legend.Add(l.name, ln, pts)
		}
	}
	var ticks []plot.Tick
	for _, p := range s.Points {
		ticks = append(ticks, plot.Tick{Value: float64(p.Concurrency), Label: strconv.Itoa(p.Concurrency)})
	}
	thr.X.Tick.Marker, late.X.Tick.Marker = plot.ConstantTicks(ticks), plot.ConstantTicks(ticks)

	const w, h = 7 * vg.Inch, 2.8 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	top := dc
	if title != "" {
		top.Max.Y -= 24
		dc.FillText(draw.TextStyle{Color: color.Black, Font: thr.Title.TextStyle.Font, Handler: thr.Title.TextStyle.Handler,
			XAlign: draw.XCenter, YAlign: draw.YTop}, vg.Point{X: w / 2, Y: h - 3}, title)
	}
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	cs := plot.Align([][]*plot.Plot{{thr, late}}, tiles, top)
	thr.Draw(cs[0][0])
	late.Draw(cs[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
