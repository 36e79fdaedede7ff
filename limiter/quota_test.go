package limiter

import (
	"testing"
	"time"
)

func TestDayOf(t *testing.T) {
	for _, c := range []struct{ sec, day int64 }{
		{0, 0}, {86399, 0}, {86400, 1}, {-1, -1}, {-86400, -1}, {-86401, -2},
	} {
		if got := DayOf(c.sec); got != c.day {
			t.Errorf("DayOf(%d) = %d, want %d", c.sec, got, c.day)
		}
		if DayStart(DayOf(c.sec)) > c.sec || DayStart(DayOf(c.sec)+1) <= c.sec {
			t.Errorf("DayStart(DayOf(%d)) does not contain it", c.sec)
		}
	}
}

func TestQuotaBoundsAndSpans(t *testing.T) {
	q, err := ParseQuota("WEEK", 1, 100) // Monday
	if err != nil {
		t.Fatal(err)
	}
	wed := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC).Unix()
	start, end := q.Bounds(wed)
	if want := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Unix(); start != want || end != want+7*SecondsPerDay {
		t.Fatalf("Bounds = [%d, %d), want [%d, %d)", start, end, want, want+7*SecondsPerDay)
	}
	s := Span{start, end}
	if !s.Contains(start) || s.Contains(end) || !s.Contains(wed) {
		t.Fatal("Contains is not [start, end)")
	}
	first, last := s.Days()
	if last-first != 6 {
		t.Fatalf("a week spans %d days", last-first+1)
	}
	if s.ClampDay(first-3) != first || s.ClampDay(last+1) != last || s.ClampDay(first+2) != first+2 {
		t.Fatal("ClampDay does not clamp into the span")
	}
	day := Span{start, start + SecondsPerDay}
	if !day.Overlaps(s) || !s.Overlaps(day) || (Span{end, end + 1}).Overlaps(s) {
		t.Fatal("Overlaps is wrong")
	}
	for _, bad := range [][3]any{{"YEAR", int64(0), int64(1)}, {"DAY", int64(1), int64(1)}, {"MONTH", int64(0), int64(-1)}} {
		if _, err := ParseQuota(bad[0].(string), bad[1].(int64), bad[2].(int64)); err == nil {
			t.Errorf("ParseQuota%v: no error", bad)
		}
	}
}
