package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// the bench runs on (Go cannot ask sysconf without cgo).
const clockTicks = 100

// cpuSample is the CPU used so far by the servers, by this process and by
// the whole machine.
type cpuSample struct {
	at      time.Time
	servers []time.Duration // by ServerPIDs; -1 when unreadable
	self    time.Duration
	// busy and total are the machine's CPU ticks (all cores) from
	// /proc/stat; busy excludes idle and iowait.
	busy, total uint64
}

func sampleCPU(pids []int) cpuSample {
	s := cpuSample{at: time.Now(), servers: make([]time.Duration, len(pids))}
	for i, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			d = -1
		}
		s.servers[i] = d
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.busy, s.total = machineCPU()
	return s
}

// procCPU reads utime + stime of a process from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads fields 14 (utime) and 15 (stime) of a stat line; the
// command name (field 2) is in parentheses and may hold spaces.
func parseProcStat(line string) (time.Duration, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed utime/stime")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// machineCPU reads the "cpu" line of /proc/stat: busy and total ticks.
func machineCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// loadAvg reads the 1, 5 and 15 minute load averages.
func loadAvg() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		out[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return out
}

// cores is the CPU used between two readings, in cores.
func cores(d time.Duration, over time.Duration) float64 {
	if over <= 0 || d < 0 {
		return 0
	}
	return d.Seconds() / over.Seconds()
}
