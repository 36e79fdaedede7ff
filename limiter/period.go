package limiter

import (
	"errors"
	"fmt"
	"time"
)

// Period is the length of a quota period.
type Period int8

// Quota periods, spelled as in the original's API.
const (
	PeriodDay Period = iota + 1
	PeriodWeek
	PeriodMonth
)

// MaxQuotaLimit is the largest quota limit accepted.
const MaxQuotaLimit int64 = 1e12

// Errors returned by ParsePeriod and ValidateQuota, wrapped with detail.
var (
	ErrInvalidPeriod = errors.New("invalid quota period")
	ErrInvalidOffset = errors.New("invalid quota offset")
	ErrInvalidLimit  = errors.New("invalid quota limit")
)

// ParsePeriod reads "DAY", "WEEK" or "MONTH", exactly.
func ParsePeriod(s string) (Period, error) {
	switch s {
	case "DAY":
		return PeriodDay, nil
	case "WEEK":
		return PeriodWeek, nil
	case "MONTH":
		return PeriodMonth, nil
	}
	return 0, fmt.Errorf("%w %q: want DAY, WEEK or MONTH", ErrInvalidPeriod, s)
}

// String returns "DAY", "WEEK" or "MONTH", or "Period(n)" for other values.
func (p Period) String() string {
	switch p {
	case PeriodDay:
		return "DAY"
	case PeriodWeek:
		return "WEEK"
	case PeriodMonth:
		return "MONTH"
	}
	return fmt.Sprintf("Period(%d)", int8(p))
}

// maxOffset returns the largest offset p accepts, or -1 for an unknown p.
func maxOffset(p Period) int64 {
	switch p {
	case PeriodDay:
		return 0
	case PeriodWeek:
		return 6
	case PeriodMonth:
		return 27
	}
	return -1
}

// ValidateQuota checks a quota: a known period, an offset that names a day
// every such period has (DAY: 0; WEEK: 0..6, 0 = Sunday; MONTH: 0..27, 0 =
// the 1st), and a limit in 0..MaxQuotaLimit.
func ValidateQuota(p Period, offset int64, limit int64) error {
	hi := maxOffset(p)
	if hi < 0 {
		return fmt.Errorf("%w %v: want DAY, WEEK or MONTH", ErrInvalidPeriod, p)
	}
	if offset < 0 || offset > hi {
		switch p {
		case PeriodDay:
			return fmt.Errorf("%w %d: a DAY quota takes offset 0", ErrInvalidOffset, offset)
		case PeriodWeek:
			return fmt.Errorf("%w %d: a WEEK quota takes 0 (Sunday) to 6 (Saturday)", ErrInvalidOffset, offset)
		default:
			return fmt.Errorf("%w %d: a MONTH quota takes 0 (the 1st) to 27 (the 28th)", ErrInvalidOffset, offset)
		}
	}
	if limit < 0 || limit > MaxQuotaLimit {
		return fmt.Errorf("%w %d: want 0 to %d", ErrInvalidLimit, limit, MaxQuotaLimit)
	}
	return nil
}

// PeriodStart returns the start, in UTC, of the period that contains t.
//
// DAY periods start at 00:00 UTC. WEEK periods start at 00:00 UTC on the
// day offset days after Sunday (0 = Sunday … 6 = Saturday). MONTH periods
// start at 00:00 UTC on day 1+offset of the month.
//
// p and offset should have passed ValidateQuota. Otherwise the result does
// not panic: an offset out of range is clamped to the nearest valid one, and
// an unknown period gives the zero Time.
func PeriodStart(p Period, offset int64, t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case PeriodDay:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case PeriodWeek:
		back := (int(t.Weekday()) - int(clampOffset(p, offset)) + 7) % 7
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case PeriodMonth:
		day := 1 + int(clampOffset(p, offset))
		if d < day {
			m-- // time.Date carries month 0 into December of the year before
		}
		return time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// NextPeriodStart returns the start, in UTC, of the period after the one
// that contains t. Same rules as PeriodStart.
func NextPeriodStart(p Period, offset int64, t time.Time) time.Time {
	s := PeriodStart(p, offset, t)
	y, m, d := s.Date()
	switch p {
	case PeriodDay:
		return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	case PeriodWeek:
		return time.Date(y, m, d+7, 0, 0, 0, 0, time.UTC)
	case PeriodMonth:
		// d is 1+offset <= 28: every month has it, so nothing is carried.
		return time.Date(y, m+1, d, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

func clampOffset(p Period, offset int64) int64 {
	return min(max(offset, 0), maxOffset(p))
}
