package client

import (
	"context"
	"net/http"
	"net/url"
)

// Per-event access grants and the sales report.

// Grant is one user's level on an event: "view" or "manage".
type Grant struct {
	User  string `json:"user"`
	Level string `json:"level"`
}

// EventAccess is an event's owner and its grants (EventAccess).
type EventAccess struct {
	Event  string  `json:"event"`
	Owner  string  `json:"owner"`
	Index  uint64  `json:"index"`
	Grants []Grant `json:"grants"`
}

// ReportLine is a category's or a section's seats by state and revenue.
type ReportLine struct {
	ID           string `json:"id"`
	Category     string `json:"category,omitempty"`
	Capacity     int    `json:"capacity"`
	Free         int    `json:"free"`
	Held         int    `json:"held"`
	Sold         int    `json:"sold"`
	RevenueCents int64  `json:"revenueCents"`
}

// MinuteSales is what was sold in one minute.
type MinuteSales struct {
	Minute       string `json:"minute"`
	Seats        int    `json:"seats"`
	RevenueCents int64  `json:"revenueCents"`
}

// Report is an event's sales report (Report).
type Report struct {
	Event          string        `json:"event"`
	Index          uint64        `json:"index"`
	At             string        `json:"at"`
	Categories     []ReportLine  `json:"categories"`
	Sections       []ReportLine  `json:"sections"`
	Total          ReportLine    `json:"total"`
	SalesPerMinute []MinuteSales `json:"salesPerMinute"`
}

// rawBody receives an answer's body as is, not decoded as JSON.
type rawBody []byte

// Access returns an event's grants (its owner, a manager, or an admin).
func (c *Client) Access(ctx context.Context, event string) (EventAccess, error) {
	var out EventAccess
	if err := checkID("event", event); err != nil {
		return out, err
	}
	_, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+event+"/access", url.Values{}), nil, &out)
	return out, err
}

// Grant gives user a level ("view" or "manage") on an event.
func (c *Client) Grant(ctx context.Context, event, user, level string) error {
	if err := checkID("event", event); err != nil {
		return err
	}
	if err := checkID("user", user); err != nil {
		return err
	}
	in := struct {
		Level string `json:"level"`
	}{level}
	_, err := c.do(ctx, http.MethodPut, "/v1/events/"+event+"/access/"+user, in, nil)
	return err
}

// Revoke takes a user's grant on an event away; it works on no node once
// this returns.
func (c *Client) Revoke(ctx context.Context, event, user string) error {
	if err := checkID("event", event); err != nil {
		return err
	}
	if err := checkID("user", user); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/events/"+event+"/access/"+user, nil, nil)
	return err
}

// Report returns an event's sales report.
func (c *Client) Report(ctx context.Context, event string) (Report, error) {
	var out Report
	if err := checkID("event", event); err != nil {
		return out, err
	}
	_, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+event+"/report", url.Values{}), nil, &out)
	return out, err
}

// ReportCSV returns an event's sales report as CSV.
func (c *Client) ReportCSV(ctx context.Context, event string) ([]byte, error) {
	if err := checkID("event", event); err != nil {
		return nil, err
	}
	var out rawBody
	_, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+event+"/report", url.Values{"format": {"csv"}}), nil, &out)
	return out, err
}
