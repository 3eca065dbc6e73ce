package boxoffice

import "strconv"

// AccessLevel is what a user may do on one event. The event's organiser
// (its owner) and admins may do everything; other users hold what a grant
// gives them. Levels are ordered: each includes the ones below it.
type AccessLevel uint8

const (
	AccessNone AccessLevel = iota
	// AccessView reads the event's holds, orders, owned seat map and report
	// (door staff, accounting).
	AccessView
	// AccessManage also updates the event, cancels its orders and grants or
	// revokes view.
	AccessManage
	// AccessOwner is the event's organiser (or an admin): also grants and
	// revokes manage. It is never stored as a grant.
	AccessOwner
)

// GrantsPerEventMax bounds the grants of one event.
const GrantsPerEventMax = 1000

func (l AccessLevel) String() string {
	switch l {
	case AccessNone:
		return "none"
	case AccessView:
		return "view"
	case AccessManage:
		return "manage"
	case AccessOwner:
		return "owner"
	}
	return "AccessLevel(" + strconv.Itoa(int(l)) + ")"
}

// ParseGrantLevel parses a level a grant may give: "view" or "manage".
func ParseGrantLevel(s string) (AccessLevel, bool) {
	switch s {
	case "view":
		return AccessView, true
	case "manage":
		return AccessManage, true
	}
	return AccessNone, false
}

// Grant gives User a level on one event.
type Grant struct {
	User  string      `json:"user"`
	Level AccessLevel `json:"-"`
}

// ReportLine is the state of one category or section of an event: its
// seats by state and the revenue of those sold, in minor units.
type ReportLine struct {
	ID           string `json:"id"`
	Category     string `json:"category,omitempty"`
	Capacity     int    `json:"capacity"`
	Free         int    `json:"free"`
	Held         int    `json:"held"`
	Sold         int    `json:"sold"`
	RevenueCents int64  `json:"revenueCents"`
}

// MinuteSales is what was sold in one minute: seats and their revenue at
// the time of sale (cancellations are not subtracted).
type MinuteSales struct {
	MinuteMs     int64 `json:"-"`
	Seats        int   `json:"seats"`
	RevenueCents int64 `json:"revenueCents"`
}

// Report is an event's sales report, from the state machine's counters.
type Report struct {
	Event      string
	AtMs       int64 // the state machine's clock
	Categories []ReportLine
	Sections   []ReportLine
	Total      ReportLine
	// Minutes runs from the first minute with a sale to AtMs's minute
	// (zeros included), at most ReportMinutesMax of the latest.
	Minutes []MinuteSales
}

// ReportMinutesMax bounds the minutes of a report's sales series.
const ReportMinutesMax = 24 * 60
