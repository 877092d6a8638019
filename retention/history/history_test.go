package history

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"
)

var day0 = time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)

func night(n int) time.Time { return day0.AddDate(0, 0, n) }

func TestRecordSeriesPrune(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "history.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for n := range 10 {
		err := db.Record(ctx, night(n), []Sample{
			{Path: "/m/a/Maildir", Store: "/m/a/Maildir", Bytes: int64(1000 + 100*n), Messages: 10 + n, Limit: 5000},
			{Path: "/m/a/Maildir/.Trash", Store: "/m/a/Maildir", Bytes: 50, Messages: 1},
			{Path: "/var/mail/b", Bytes: 7, Messages: 1}, // store defaults to path
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Repeating a night replaces its samples.
	if err := db.Record(ctx, night(9), []Sample{{Path: "/m/a/Maildir", Store: "/m/a/Maildir", Bytes: 1900, Messages: 19}}); err != nil {
		t.Fatal(err)
	}
	pts, err := db.Series(ctx, "/m/a/Maildir", 0)
	if err != nil || len(pts) != 10 || pts[0].Bytes != 1000 || pts[9].Bytes != 1900 || !pts[9].At.Equal(night(9)) {
		t.Fatalf("series: %v %+v", err, pts)
	}
	last3, _ := db.Series(ctx, "/m/a/Maildir", 3)
	if len(last3) != 3 || last3[0].Bytes != 1700 || last3[2].Bytes != 1900 {
		t.Errorf("last 3: %+v", last3)
	}
	st, _ := db.StoreSeries(ctx, "/m/a/Maildir", 0)
	if len(st) != 10 || st[0].Bytes != 1050 || st[0].Messages != 11 || st[0].Limit != 5000 {
		t.Errorf("store series: %+v", st)
	}
	if tr, ok, err := db.StoreTrend(ctx, "/m/a/Maildir", 30, 0); err != nil || !ok || tr.BytesPerDay != 100 || tr.Last.Bytes != 1950 || math.Abs(tr.DaysToFull-30.5) > 1e-9 {
		t.Errorf("store trend: %+v %v %v", tr, ok, err)
	}
	if _, ok, err := db.StoreTrend(ctx, "/nowhere", 30, 0); err != nil || ok {
		t.Errorf("trend of an unknown store: %v %v", ok, err)
	}
	if ok, _ := db.IsStore(ctx, "/var/mail/b"); !ok {
		t.Error("/var/mail/b should be its own store")
	}
	if ok, _ := db.IsStore(ctx, "/m/a/Maildir/.Trash"); ok {
		t.Error("a folder is not a store")
	}

	// Notices: the newest is kept however old.
	for _, n := range []Notice{
		{Path: "/var/mail/b", SentAt: night(0), Cutoff: night(-30)},
		{Path: "/var/mail/b", SentAt: night(2), Cutoff: night(-28)},
		{Path: "/var/mail/b", SentAt: night(1), Cutoff: night(-29), Kind: KindReport},
		{Path: "/m/a/Maildir/.Trash", SentAt: night(1), Cutoff: night(-29)},
	} {
		if err := db.RecordNotice(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := db.Prune(ctx, night(5))
	if err != nil {
		t.Fatal(err)
	}
	// 5 nights × 3 samples, and b's first notice.
	if gone != 16 {
		t.Errorf("pruned %d rows, want 16", gone)
	}
	pts, _ = db.Series(ctx, "/m/a/Maildir", 0)
	if len(pts) != 5 || !pts[0].At.Equal(night(5)) {
		t.Errorf("after prune: %+v", pts)
	}
	ns, _ := db.Notices(ctx, "/var/mail/b")
	if len(ns) != 2 || !ns[1].SentAt.Equal(night(2)) || !ns[1].Cutoff.Equal(night(-28)) || ns[1].Kind != KindRemoval || ns[0].Kind != KindReport {
		t.Errorf("notices of b: %+v", ns)
	}
	if ns, _ := db.Notices(ctx, "/m/a/Maildir/.Trash"); len(ns) != 1 {
		t.Errorf("the only notice of .Trash must stay: %+v", ns)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if pts, err := ro.Series(ctx, "/var/mail/b", 0); err != nil || len(pts) != 5 {
		t.Errorf("read-only series: %v %d", err, len(pts))
	}
	if err := ro.Record(ctx, night(20), []Sample{{Path: "x", Bytes: 1}}); err == nil {
		t.Error("a read-only database accepted a write")
	}
	if _, err := OpenReadOnly(ctx, filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Error("opening a missing database read-only should fail")
	}
}

func TestFit(t *testing.T) {
	const limit = 10_000_000
	var pts []Point
	for n := range 30 {
		b := int64(1_000_000 + 50_000*n) // 50 kB a day
		if n == 7 {
			b = 9_000_000 // a one-night spike
		}
		if n == 20 {
			b = 10 // and a one-night drop
		}
		pts = append(pts, Point{At: night(n), Bytes: b})
	}
	tr, ok := Fit(pts, limit)
	if !ok {
		t.Fatal("no fit")
	}
	if math.Abs(tr.BytesPerDay-50_000) > 1 {
		t.Errorf("slope %g, want 50000 (outliers must not move it)", tr.BytesPerDay)
	}
	// Last: 1,000,000 + 29×50,000 = 2,450,000; (10,000,000-2,450,000)/50,000 = 151 days.
	if math.Abs(tr.DaysToFull-151) > 0.01 {
		t.Errorf("days to full %g, want 151", tr.DaysToFull)
	}
	if want := night(29 + 151); tr.FullAt.Sub(want).Abs() > time.Minute {
		t.Errorf("full at %v, want %v", tr.FullAt, want)
	}
	if !tr.Within(night(29), 152*24*time.Hour) || tr.Within(night(29), 150*24*time.Hour) {
		t.Error("Within is wrong")
	}

	shrinking := []Point{{At: night(0), Bytes: 500}, {At: night(1), Bytes: 400}, {At: night(2), Bytes: 300}}
	if tr, ok := Fit(shrinking, limit); !ok || tr.Growing() || tr.BytesPerDay != -100 {
		t.Errorf("shrinking: %+v %v", tr, ok)
	}
	full := []Point{{At: night(0), Bytes: limit - 1}, {At: night(1), Bytes: limit + 5}}
	if tr, _ := Fit(full, limit); tr.DaysToFull != 0 || !tr.FullAt.Equal(night(1)) {
		t.Errorf("already full: %+v", tr)
	}
	if _, ok := Fit(pts[:1], limit); ok {
		t.Error("one point is no trend")
	}
	if _, ok := Fit([]Point{{At: day0, Bytes: 1}, {At: day0.Add(time.Minute), Bytes: 2}}, limit); ok {
		t.Error("points a minute apart are no trend")
	}
}

func TestMaturedPending(t *testing.T) {
	ns := []Notice{
		{SentAt: night(0), Cutoff: night(-30), Kind: KindRemoval},
		{SentAt: night(3), Cutoff: night(-27), Kind: KindReport},
		{SentAt: night(5), Cutoff: night(-25), Kind: KindRemoval},
	}
	// Seven-day notice period.
	if m := Matured(ns, night(6).AddDate(0, 0, -7)); m != nil {
		t.Errorf("night 6: nothing has matured, got %+v", m)
	}
	if m := Matured(ns, night(7).AddDate(0, 0, -7)); m == nil || !m.SentAt.Equal(night(0)) {
		t.Errorf("night 7: the first notice matured, got %+v", m)
	}
	if m := Matured(ns, night(12).AddDate(0, 0, -7)); m == nil || !m.SentAt.Equal(night(5)) {
		t.Errorf("night 12: the latest matured, got %+v", m)
	}
	if !Pending(ns, night(7).AddDate(0, 0, -7), KindRemoval) || Pending(ns, night(12).AddDate(0, 0, -7), KindRemoval) {
		t.Error("Pending removal is wrong")
	}
	if !Pending(ns, night(4)) || Pending(ns, night(4), KindReport) {
		t.Error("Pending by kind is wrong")
	}
}
