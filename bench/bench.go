// Package bench will be the on-sale load harness (`boxoffice bench`): virtual
// users, seat-choice distributions, HDR latency, the invariant check and the
// reports. It is empty until its issue; the Go benchmarks of the hot paths
// live beside the code they measure (fsm, raftnode).
package bench
