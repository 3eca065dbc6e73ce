package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// The waiting room of a protected on-sale (GET/PUT/POST
// /v1/events/{event}/queue, GET …/queue/me).

// QueueConfig protects an event's on-sale.
type QueueConfig struct {
	OpensAt        time.Time
	PassTTLSeconds int // 0: the server's default
	AdmitPercent   int // 0: the server's default
}

// Queue is an event's waiting room.
type Queue struct {
	Event              string `json:"event"`
	OpensAt            string `json:"opensAt"`
	PassTTLSeconds     int    `json:"passTTLSeconds"`
	AdmitPercent       int    `json:"admitPercent"`
	Opened             bool   `json:"opened"`
	Joined             int64  `json:"joined"`
	Admitted           int64  `json:"admitted"`
	Waiting            int64  `json:"waiting"`
	AdmittedNotHolding int64  `json:"admittedNotHolding"`
	SoldOut            bool   `json:"soldOut"`
}

// Pass is a signed admission pass: send it with holds of the event
// (WithAdmissionPass) until ExpiresAt.
type Pass struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

// Place is a buyer's place in a queue.
type Place struct {
	Event                string `json:"event"`
	Buyer                string `json:"buyer"`
	State                string `json:"state"` // waiting, admitted, expired, sold_out
	Position             *int64 `json:"position"`
	Early                bool   `json:"early"`
	EstimatedWaitSeconds *int64 `json:"estimatedWaitSeconds"`
	PlaceToken           string `json:"placeToken"`
	Pass                 *Pass  `json:"pass"`
	Queue                Queue  `json:"queue"`
}

// WithAdmissionPass makes the holds called with the returned context carry
// pass (X-Admission-Pass), as a protected on-sale requires.
func WithAdmissionPass(ctx context.Context, pass string) context.Context {
	return context.WithValue(ctx, keyAdmissionPass, pass)
}

// ProtectSale protects an event's on-sale with a waiting room (its
// organiser, or admin).
func (c *Client) ProtectSale(ctx context.Context, event string, cfg QueueConfig) (*Queue, error) {
	if err := checkID("event", event); err != nil {
		return nil, err
	}
	in := map[string]any{"opensAt": cfg.OpensAt.UTC().Format(time.RFC3339Nano)}
	if cfg.PassTTLSeconds != 0 {
		in["passTTLSeconds"] = cfg.PassTTLSeconds
	}
	if cfg.AdmitPercent != 0 {
		in["admitPercent"] = cfg.AdmitPercent
	}
	var out Queue
	if _, err := c.do(ctx, http.MethodPut, "/v1/events/"+event+"/queue", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetQueue reads an event's waiting room.
func (c *Client) GetQueue(ctx context.Context, event string) (*Queue, error) {
	if err := checkID("event", event); err != nil {
		return nil, err
	}
	var out Queue
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+event+"/queue", url.Values{}), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// JoinQueue joins the event's queue as the token's subject; joining again
// returns the same place.
func (c *Client) JoinQueue(ctx context.Context, event string) (*Place, error) {
	if err := checkID("event", event); err != nil {
		return nil, err
	}
	var out Place
	if _, err := c.do(ctx, http.MethodPost, "/v1/events/"+event+"/queue", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MyPlace reads the token subject's place in the event's queue, with the
// admission pass once admitted.
func (c *Client) MyPlace(ctx context.Context, event string) (*Place, error) {
	if err := checkID("event", event); err != nil {
		return nil, err
	}
	var out Place
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+event+"/queue/me", url.Values{}), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
