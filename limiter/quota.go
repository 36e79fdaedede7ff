package limiter

import "time"

// SecondsPerDay is the length of a UTC day in Unix seconds.
const SecondsPerDay = 86400

// DayOf returns the Unix day number (UTC) of a Unix time in seconds: the
// key of the ledger's daily usage history.
func DayOf(sec int64) int64 {
	d := sec / SecondsPerDay
	if sec%SecondsPerDay < 0 {
		d--
	}
	return d
}

// DayStart returns the Unix second at which a Unix day number begins.
func DayStart(day int64) int64 { return day * SecondsPerDay }

// Quota is a plan's quota: a limit of requests per calendar period. It is
// the one view of a plan's quota that the ledger, the admin API and the
// data plane share.
type Quota struct {
	Period Period
	Offset int64
	Limit  int64
}

// ParseQuota reads a plan's quota settings. An error means the settings
// are invalid (validation at the admin API keeps them out of the log).
func ParseQuota(period string, offset, limit int64) (Quota, error) {
	p, err := ParsePeriod(period)
	if err != nil {
		return Quota{}, err
	}
	if err := ValidateQuota(p, offset, limit); err != nil {
		return Quota{}, err
	}
	return Quota{Period: p, Offset: offset, Limit: limit}, nil
}

// Bounds returns the quota period that contains the Unix second sec, as
// Unix seconds [start, end).
func (q Quota) Bounds(sec int64) (start, end int64) {
	t := time.Unix(sec, 0)
	return PeriodStart(q.Period, q.Offset, t).Unix(), NextPeriodStart(q.Period, q.Offset, t).Unix()
}

// Span is a stretch of ledger time [Start, End) in Unix seconds: the
// period a quota grant is valid in.
type Span struct{ Start, End int64 }

// Contains tells whether the Unix second sec falls in the span.
func (s Span) Contains(sec int64) bool { return sec >= s.Start && sec < s.End }

// Overlaps tells whether two spans share a second.
func (s Span) Overlaps(o Span) bool { return s.Start < o.End && o.Start < s.End }

// Days returns the first and last (inclusive) Unix day numbers of a
// non-empty span.
func (s Span) Days() (first, last int64) { return DayOf(s.Start), DayOf(s.End - 1) }

// ClampDay brings a day number into the span's days: a request counts on
// a day of the period whose grant it spent, whatever the clock said.
func (s Span) ClampDay(day int64) int64 {
	first, last := s.Days()
	return min(max(day, first), last)
}
