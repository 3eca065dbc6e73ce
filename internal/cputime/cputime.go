// Package cputime reads the CPU time this process has used, for benchmarks:
// on a machine shared with other work, wall-clock ns/op measures the
// neighbours as much as the code, while the CPU a run consumed per
// operation does not.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user and system CPU time used so far by every thread
// of this process.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Meter measures the CPU used from its start.
type Meter struct{ start time.Duration }

// Start starts a Meter.
func Start() Meter { return Meter{start: Process()} }

// PerOp is the CPU used since Start divided by n, in microseconds.
func (m Meter) PerOp(n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(Process()-m.start) / float64(time.Microsecond) / float64(n)
}
