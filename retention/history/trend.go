package history

import (
	"context"
	"math"
	"slices"
	"time"
)

// Trend is the growth of a store fitted over recent runs.
type Trend struct {
	// Points is how many runs the fit used.
	Points int
	// BytesPerDay is the Theil–Sen slope: the median of the slopes
	// between every pair of runs, so that a few odd nights (a prune, a
	// large attachment) do not move it.
	BytesPerDay float64
	// Last is the latest point.
	Last Point
	// DaysToFull is how long, at that rate, from the latest run until the
	// store reaches the limit: 0 when it already has, +Inf when it is not
	// growing.
	DaysToFull float64
	// FullAt is Last.At plus DaysToFull; zero when not growing.
	FullAt time.Time
}

// Growing reports whether the store is projected to reach its limit.
func (t Trend) Growing() bool { return !math.IsInf(t.DaysToFull, 1) }

// Within reports whether the store is projected to be full within d of
// the instant now.
func (t Trend) Within(now time.Time, d time.Duration) bool {
	return t.Growing() && !t.FullAt.After(now.Add(d))
}

// minFitSpan is the least time the points must span for a trend: runs a
// few minutes apart say nothing about growth per day.
const minFitSpan = time.Hour

// Fit fits a trend to points (oldest first, as [DB.StoreSeries] returns
// them) against limit bytes. ok is false with fewer than two points or
// when they span less than an hour.
func Fit(points []Point, limit int64) (t Trend, ok bool) {
	if len(points) < 2 || points[len(points)-1].At.Sub(points[0].At) < minFitSpan {
		return Trend{}, false
	}
	var slopes []float64
	for i := range points {
		for j := i + 1; j < len(points); j++ {
			dt := points[j].At.Sub(points[i].At).Hours() / 24
			if dt <= 0 {
				continue
			}
			slopes = append(slopes, float64(points[j].Bytes-points[i].Bytes)/dt)
		}
	}
	if len(slopes) == 0 {
		return Trend{}, false
	}
	t = Trend{Points: len(points), BytesPerDay: median(slopes), Last: points[len(points)-1]}
	switch {
	case t.Last.Bytes >= limit:
		t.DaysToFull = 0
	case t.BytesPerDay <= 0:
		t.DaysToFull = math.Inf(1)
	default:
		t.DaysToFull = float64(limit-t.Last.Bytes) / t.BytesPerDay
	}
	if t.Growing() {
		// Capped so that a crawl of a few bytes a day does not overflow.
		days := math.Min(t.DaysToFull, 100*365)
		t.FullAt = t.Last.At.Add(time.Duration(days * 24 * float64(time.Hour)))
	}
	return t, true
}

func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// StoreTrend fits the growth of store over its last points runs (see
// [Fit]) against limit, or against the latest limit recorded with its runs
// when limit is 0. ok is false when there are not enough runs. It is what
// a scan needs to show "full in N days".
func (d *DB) StoreTrend(ctx context.Context, store string, points int, limit int64) (t Trend, ok bool, err error) {
	pts, err := d.StoreSeries(ctx, store, points)
	if err != nil || len(pts) == 0 {
		return Trend{}, false, err
	}
	for i := len(pts) - 1; i >= 0 && limit <= 0; i-- {
		limit = pts[i].Limit // the latest one recorded
	}
	if limit <= 0 {
		return Trend{}, false, nil
	}
	t, ok = Fit(pts, limit)
	return t, ok, nil
}
