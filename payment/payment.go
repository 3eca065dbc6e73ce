// Package payment holds the payment gateways — a simulated one with latency
// and failure injection (Sim), and Stripe behind the same interface — and
// the checkout saga that records every step of a purchase through the log
// and resolves, after a leader change, every checkout and refund still in
// flight (saga.go).
//
// The gateway interface itself, boxoffice.PaymentGateway, is in the root
// package, because several packages share it.
package payment
