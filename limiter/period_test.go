package limiter

import (
	"errors"
	"testing"
	"time"
)

func utc(y int, m time.Month, d, h, min, s, ns int) time.Time {
	return time.Date(y, m, d, h, min, s, ns, time.UTC)
}

func TestParsePeriod(t *testing.T) {
	good := map[string]Period{"DAY": PeriodDay, "WEEK": PeriodWeek, "MONTH": PeriodMonth}
	for s, want := range good {
		got, err := ParsePeriod(s)
		if err != nil || got != want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range []string{"", "day", "Day", " DAY", "DAY ", "YEAR", "WEEKS", "HOUR"} {
		if p, err := ParsePeriod(s); err == nil || !errors.Is(err, ErrInvalidPeriod) {
			t.Errorf("ParsePeriod(%q) = %v, %v; want ErrInvalidPeriod", s, p, err)
		}
	}
	if got := Period(9).String(); got != "Period(9)" {
		t.Errorf("Period(9).String() = %q", got)
	}
}

func TestValidateQuota(t *testing.T) {
	cases := []struct {
		p      Period
		offset int64
		limit  int64
		want   error
	}{
		{PeriodDay, 0, 0, nil},
		{PeriodDay, 0, MaxQuotaLimit, nil},
		{PeriodDay, 1, 100, ErrInvalidOffset},
		{PeriodDay, -1, 100, ErrInvalidOffset},
		{PeriodWeek, 0, 100, nil},
		{PeriodWeek, 6, 100, nil},
		{PeriodWeek, 7, 100, ErrInvalidOffset},
		{PeriodWeek, -1, 100, ErrInvalidOffset},
		{PeriodMonth, 0, 100, nil},
		{PeriodMonth, 27, 100, nil},
		{PeriodMonth, 28, 100, ErrInvalidOffset},
		{PeriodMonth, 30, 100, ErrInvalidOffset},
		{PeriodMonth, 0, -1, ErrInvalidLimit},
		{PeriodMonth, 0, MaxQuotaLimit + 1, ErrInvalidLimit},
		{0, 0, 100, ErrInvalidPeriod},
		{Period(4), 0, 100, ErrInvalidPeriod},
		{Period(-1), 0, 100, ErrInvalidPeriod},
	}
	for _, c := range cases {
		err := ValidateQuota(c.p, c.offset, c.limit)
		if c.want == nil {
			if err != nil {
				t.Errorf("ValidateQuota(%v, %d, %d) = %v, want nil", c.p, c.offset, c.limit, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("ValidateQuota(%v, %d, %d) = %v, want %v", c.p, c.offset, c.limit, err, c.want)
		}
	}
	// The message names the period's range.
	if err := ValidateQuota(PeriodWeek, 9, 1); err == nil || err.Error() != "invalid quota offset 9: a WEEK quota takes 0 (Sunday) to 6 (Saturday)" {
		t.Errorf("WEEK offset message = %v", err)
	}
}

func TestPeriodBoundaries(t *testing.T) {
	cet := time.FixedZone("UTC+1", 3600)
	pst := time.FixedZone("UTC-8", -8*3600)
	cases := []struct {
		name      string
		p         Period
		offset    int64
		t         time.Time
		start     time.Time
		nextStart time.Time
	}{
		// DAY
		{"day middle", PeriodDay, 0, utc(2025, 3, 14, 15, 9, 26, 5), utc(2025, 3, 14, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0)},
		{"day on boundary", PeriodDay, 0, utc(2025, 3, 14, 0, 0, 0, 0), utc(2025, 3, 14, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0)},
		{"day 1ns before", PeriodDay, 0, utc(2025, 3, 13, 23, 59, 59, 999999999), utc(2025, 3, 13, 0, 0, 0, 0), utc(2025, 3, 14, 0, 0, 0, 0)},
		{"day Jan 31", PeriodDay, 0, utc(2025, 1, 31, 12, 0, 0, 0), utc(2025, 1, 31, 0, 0, 0, 0), utc(2025, 2, 1, 0, 0, 0, 0)},
		{"day Dec 31", PeriodDay, 0, utc(2025, 12, 31, 23, 0, 0, 0), utc(2025, 12, 31, 0, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0, 0)},
		{"day leap 2024-02-28", PeriodDay, 0, utc(2024, 2, 28, 5, 0, 0, 0), utc(2024, 2, 28, 0, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0, 0)},
		{"day leap 2024-02-29", PeriodDay, 0, utc(2024, 2, 29, 5, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0, 0), utc(2024, 3, 1, 0, 0, 0, 0)},
		{"day 2025-02-28", PeriodDay, 0, utc(2025, 2, 28, 5, 0, 0, 0), utc(2025, 2, 28, 0, 0, 0, 0), utc(2025, 3, 1, 0, 0, 0, 0)},
		{"day leap 2028-02-29", PeriodDay, 0, utc(2028, 2, 29, 23, 59, 59, 999999999), utc(2028, 2, 29, 0, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0, 0)},
		// 2025-03-15 00:30 in UTC+1 is still 2025-03-14 in UTC.
		{"day non-UTC east", PeriodDay, 0, time.Date(2025, 3, 15, 0, 30, 0, 0, cet), utc(2025, 3, 14, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0)},
		// 2025-03-14 20:00 in UTC-8 is already 2025-03-15 in UTC.
		{"day non-UTC west", PeriodDay, 0, time.Date(2025, 3, 14, 20, 0, 0, 0, pst), utc(2025, 3, 15, 0, 0, 0, 0), utc(2025, 3, 16, 0, 0, 0, 0)},

		// WEEK (2025-03-09 is a Sunday)
		{"week Sunday start", PeriodWeek, 0, utc(2025, 3, 12, 10, 0, 0, 0), utc(2025, 3, 9, 0, 0, 0, 0), utc(2025, 3, 16, 0, 0, 0, 0)},
		{"week Monday start", PeriodWeek, 1, utc(2025, 3, 12, 10, 0, 0, 0), utc(2025, 3, 10, 0, 0, 0, 0), utc(2025, 3, 17, 0, 0, 0, 0)},
		{"week Saturday start", PeriodWeek, 6, utc(2025, 3, 12, 10, 0, 0, 0), utc(2025, 3, 8, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0)},
		{"week Wednesday start on the day", PeriodWeek, 3, utc(2025, 3, 12, 0, 0, 0, 0), utc(2025, 3, 12, 0, 0, 0, 0), utc(2025, 3, 19, 0, 0, 0, 0)},
		{"week 1ns before Wednesday start", PeriodWeek, 3, utc(2025, 3, 11, 23, 59, 59, 999999999), utc(2025, 3, 5, 0, 0, 0, 0), utc(2025, 3, 12, 0, 0, 0, 0)},
		{"week on Sunday boundary", PeriodWeek, 0, utc(2025, 3, 9, 0, 0, 0, 0), utc(2025, 3, 9, 0, 0, 0, 0), utc(2025, 3, 16, 0, 0, 0, 0)},
		{"week 1ns before Sunday", PeriodWeek, 0, utc(2025, 3, 8, 23, 59, 59, 999999999), utc(2025, 3, 2, 0, 0, 0, 0), utc(2025, 3, 9, 0, 0, 0, 0)},
		// 2025-04-27 is a Sunday: the week crosses into May.
		{"week crosses a month", PeriodWeek, 0, utc(2025, 5, 2, 8, 0, 0, 0), utc(2025, 4, 27, 0, 0, 0, 0), utc(2025, 5, 4, 0, 0, 0, 0)},
		// 2025-12-28 is a Sunday: the week crosses into 2026.
		{"week crosses a year", PeriodWeek, 0, utc(2026, 1, 1, 0, 0, 0, 0), utc(2025, 12, 28, 0, 0, 0, 0), utc(2026, 1, 4, 0, 0, 0, 0)},
		{"week crosses a year Monday", PeriodWeek, 1, utc(2025, 12, 31, 12, 0, 0, 0), utc(2025, 12, 29, 0, 0, 0, 0), utc(2026, 1, 5, 0, 0, 0, 0)},
		// 2024-02-29 is a Thursday.
		{"week over leap day", PeriodWeek, 4, utc(2024, 3, 6, 0, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0, 0), utc(2024, 3, 7, 0, 0, 0, 0)},
		// Sunday 2025-03-09 00:30 in UTC+1 is Saturday in UTC.
		{"week non-UTC", PeriodWeek, 0, time.Date(2025, 3, 9, 0, 30, 0, 0, cet), utc(2025, 3, 2, 0, 0, 0, 0), utc(2025, 3, 9, 0, 0, 0, 0)},

		// MONTH
		{"month 1st", PeriodMonth, 0, utc(2025, 3, 14, 0, 0, 0, 0), utc(2025, 3, 1, 0, 0, 0, 0), utc(2025, 4, 1, 0, 0, 0, 0)},
		{"month Jan 31 to Feb", PeriodMonth, 0, utc(2025, 1, 31, 23, 59, 59, 999999999), utc(2025, 1, 1, 0, 0, 0, 0), utc(2025, 2, 1, 0, 0, 0, 0)},
		{"month Dec 31 to next year", PeriodMonth, 0, utc(2025, 12, 31, 18, 0, 0, 0), utc(2025, 12, 1, 0, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0, 0)},
		{"month on boundary", PeriodMonth, 0, utc(2026, 1, 1, 0, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0, 0)},
		{"month 1ns before", PeriodMonth, 0, utc(2025, 12, 31, 23, 59, 59, 999999999), utc(2025, 12, 1, 0, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0, 0)},
		{"month leap Feb 2024", PeriodMonth, 0, utc(2024, 2, 29, 12, 0, 0, 0), utc(2024, 2, 1, 0, 0, 0, 0), utc(2024, 3, 1, 0, 0, 0, 0)},
		{"month Feb 2025", PeriodMonth, 0, utc(2025, 2, 28, 12, 0, 0, 0), utc(2025, 2, 1, 0, 0, 0, 0), utc(2025, 3, 1, 0, 0, 0, 0)},
		{"month leap Feb 2028", PeriodMonth, 0, utc(2028, 2, 29, 23, 59, 59, 999999999), utc(2028, 2, 1, 0, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0, 0)},
		{"month offset 14 after", PeriodMonth, 14, utc(2025, 3, 20, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0), utc(2025, 4, 15, 0, 0, 0, 0)},
		{"month offset 14 before", PeriodMonth, 14, utc(2025, 3, 10, 0, 0, 0, 0), utc(2025, 2, 15, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0)},
		{"month offset 14 on boundary", PeriodMonth, 14, utc(2025, 3, 15, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0), utc(2025, 4, 15, 0, 0, 0, 0)},
		{"month offset 14 1ns before", PeriodMonth, 14, utc(2025, 3, 14, 23, 59, 59, 999999999), utc(2025, 2, 15, 0, 0, 0, 0), utc(2025, 3, 15, 0, 0, 0, 0)},
		{"month offset 27 Jan 31", PeriodMonth, 27, utc(2025, 1, 31, 0, 0, 0, 0), utc(2025, 1, 28, 0, 0, 0, 0), utc(2025, 2, 28, 0, 0, 0, 0)},
		{"month offset 27 Feb 28 2025", PeriodMonth, 27, utc(2025, 2, 28, 0, 0, 0, 0), utc(2025, 2, 28, 0, 0, 0, 0), utc(2025, 3, 28, 0, 0, 0, 0)},
		{"month offset 27 leap day 2024", PeriodMonth, 27, utc(2024, 2, 29, 0, 0, 0, 0), utc(2024, 2, 28, 0, 0, 0, 0), utc(2024, 3, 28, 0, 0, 0, 0)},
		{"month offset 27 leap day 2028", PeriodMonth, 27, utc(2028, 2, 29, 23, 0, 0, 0), utc(2028, 2, 28, 0, 0, 0, 0), utc(2028, 3, 28, 0, 0, 0, 0)},
		{"month offset 27 early January", PeriodMonth, 27, utc(2026, 1, 5, 0, 0, 0, 0), utc(2025, 12, 28, 0, 0, 0, 0), utc(2026, 1, 28, 0, 0, 0, 0)},
		{"month offset 27 Dec 31", PeriodMonth, 27, utc(2025, 12, 31, 0, 0, 0, 0), utc(2025, 12, 28, 0, 0, 0, 0), utc(2026, 1, 28, 0, 0, 0, 0)},
		// 2026-01-01 00:30 in UTC+1 is still December in UTC.
		{"month non-UTC east", PeriodMonth, 0, time.Date(2026, 1, 1, 0, 30, 0, 0, cet), utc(2025, 12, 1, 0, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0, 0)},
		// 2025-12-31 16:00 in UTC-8 is already 2026 in UTC.
		{"month non-UTC west", PeriodMonth, 0, time.Date(2025, 12, 31, 16, 0, 0, 0, pst), utc(2026, 1, 1, 0, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := PeriodStart(c.p, c.offset, c.t)
			next := NextPeriodStart(c.p, c.offset, c.t)
			if !start.Equal(c.start) || start.Location() != time.UTC {
				t.Errorf("PeriodStart(%v, %d, %v) = %v, want %v", c.p, c.offset, c.t, start, c.start)
			}
			if !next.Equal(c.nextStart) || next.Location() != time.UTC {
				t.Errorf("NextPeriodStart(%v, %d, %v) = %v, want %v", c.p, c.offset, c.t, next, c.nextStart)
			}
			checkPeriod(t, c.p, c.offset, c.t)
		})
	}
}

func TestPeriodInvalidInput(t *testing.T) {
	at := utc(2025, 3, 14, 12, 0, 0, 0)
	if got := PeriodStart(Period(0), 0, at); !got.IsZero() {
		t.Errorf("PeriodStart of an unknown period = %v, want zero", got)
	}
	if got := NextPeriodStart(Period(7), 0, at); !got.IsZero() {
		t.Errorf("NextPeriodStart of an unknown period = %v, want zero", got)
	}
	// Offsets out of range are clamped.
	if got, want := PeriodStart(PeriodMonth, 40, at), utc(2025, 2, 28, 0, 0, 0, 0); !got.Equal(want) {
		t.Errorf("PeriodStart(MONTH, 40) = %v, want %v", got, want)
	}
	if got, want := PeriodStart(PeriodWeek, -3, at), utc(2025, 3, 9, 0, 0, 0, 0); !got.Equal(want) {
		t.Errorf("PeriodStart(WEEK, -3) = %v, want %v", got, want)
	}
	if got, want := PeriodStart(PeriodDay, 5, at), utc(2025, 3, 14, 0, 0, 0, 0); !got.Equal(want) {
		t.Errorf("PeriodStart(DAY, 5) = %v, want %v", got, want)
	}
}

// checkPeriod asserts the properties every period must have around t.
func checkPeriod(t *testing.T, p Period, offset int64, at time.Time) {
	t.Helper()
	start := PeriodStart(p, offset, at)
	next := NextPeriodStart(p, offset, at)
	if start.After(at) || !next.After(at) {
		t.Fatalf("%v/%d at %v: want start %v <= t < next %v", p, offset, at, start, next)
	}
	if start.Location() != time.UTC || next.Location() != time.UTC {
		t.Fatalf("%v/%d at %v: start %v or next %v not in UTC", p, offset, at, start, next)
	}
	if h, m, s := start.Clock(); h != 0 || m != 0 || s != 0 || start.Nanosecond() != 0 {
		t.Fatalf("%v/%d at %v: start %v is not 00:00 UTC", p, offset, at, start)
	}
	if got := PeriodStart(p, offset, next); !got.Equal(next) {
		t.Fatalf("%v/%d at %v: PeriodStart(next %v) = %v", p, offset, at, next, got)
	}
	if got := PeriodStart(p, offset, start); !got.Equal(start) {
		t.Fatalf("%v/%d at %v: PeriodStart(start %v) = %v", p, offset, at, start, got)
	}
	if got := PeriodStart(p, offset, next.Add(-1)); !got.Equal(start) {
		t.Fatalf("%v/%d at %v: PeriodStart(next-1ns) = %v, want %v", p, offset, at, got, start)
	}
	if got := NextPeriodStart(p, offset, start.Add(-1)); !got.Equal(start) {
		t.Fatalf("%v/%d at %v: NextPeriodStart(start-1ns) = %v, want %v", p, offset, at, got, start)
	}
	days := next.Sub(start) / (24 * time.Hour)
	switch p {
	case PeriodDay:
		if next.Sub(start) != 24*time.Hour {
			t.Fatalf("DAY at %v: length %v", at, next.Sub(start))
		}
	case PeriodWeek:
		if next.Sub(start) != 7*24*time.Hour || int64(start.Weekday()) != offset {
			t.Fatalf("WEEK/%d at %v: start %v (%v), length %v", offset, at, start, start.Weekday(), next.Sub(start))
		}
	case PeriodMonth:
		if days < 28 || days > 31 || next.Sub(start)%(24*time.Hour) != 0 ||
			int64(start.Day()) != 1+offset || int64(next.Day()) != 1+offset {
			t.Fatalf("MONTH/%d at %v: start %v, next %v", offset, at, start, next)
		}
		if sm, nm := start.Month(), next.Month(); nm != sm%12+1 {
			t.Fatalf("MONTH/%d at %v: next month %v after %v", offset, at, nm, sm)
		}
	}
}

func TestPeriodEveryDayOfFourYears(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("UTC+14", 14*3600), time.FixedZone("UTC-12", -12*3600)}
	for d := utc(2023, 12, 20, 0, 0, 0, 0); d.Before(utc(2028, 3, 10, 0, 0, 0, 0)); d = d.Add(24 * time.Hour) {
		for _, p := range []Period{PeriodDay, PeriodWeek, PeriodMonth} {
			for off := int64(0); off <= maxOffset(p); off++ {
				for _, z := range zones {
					checkPeriod(t, p, off, d.Add(7*time.Hour+13*time.Minute).In(z))
				}
			}
		}
	}
}

func FuzzPeriod(f *testing.F) {
	f.Add(int8(1), int64(0), int64(1735689600), int64(0), int32(0))
	f.Add(int8(2), int64(6), int64(1709164800), int64(999999999), int32(3600))
	f.Add(int8(3), int64(27), int64(1709251199), int64(999999999), int32(-8*3600))
	f.Add(int8(3), int64(0), int64(1767225599), int64(999999999), int32(14*3600))
	f.Fuzz(func(t *testing.T, pr int8, off int64, sec int64, nsec int64, zone int32) {
		p := Period(1 + (int(pr)%3+3)%3)
		offset := ((off % (maxOffset(p) + 1)) + maxOffset(p) + 1) % (maxOffset(p) + 1)
		if ValidateQuota(p, offset, 0) != nil {
			t.Fatalf("fuzz setup: %v/%d not valid", p, offset)
		}
		// Years 1 to 9999, zones within ±18h.
		const lo, span = -62135596800, 315537897600
		sec = lo + ((sec%span)+span)%span
		at := time.Unix(sec, nsec%1e9).In(time.FixedZone("z", int(zone%(18*3600))))
		checkPeriod(t, p, offset, at)
	})
}
