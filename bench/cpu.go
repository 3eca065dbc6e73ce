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
	var procs map[int]procStat
	if len(pids) > 0 {
		procs = readProcs()
	}
	for i, pid := range pids {
		s.servers[i] = treeCPU(procs, pid)
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.busy, s.total = machineCPU()
	return s
}

// procStat is what the bench reads of a process's /proc/<pid>/stat.
type procStat struct {
	ppid int
	// cpu is utime + stime; children is cutime + cstime, the CPU of its
	// children that exited and were waited for.
	cpu, children time.Duration
}

// readProcs reads every process's stat (those that vanish meanwhile are
// left out).
func readProcs() map[int]procStat {
	out := map[int]procStat{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if st, err := parseProcStat(string(b)); err == nil {
			out[pid] = st
		}
	}
	return out
}

// treeCPU is the CPU used so far by pid and all its descendants: each live
// one's own and its reaped children's. A server that forks a process per
// connection (PostgreSQL) is counted whole this way, and the sum never goes
// down: a child's CPU moves into its parent's children figure when it
// exits. -1 when pid is gone.
func treeCPU(procs map[int]procStat, pid int) time.Duration {
	root, ok := procs[pid]
	if !ok {
		return -1
	}
	kids := map[int][]int{}
	for p, st := range procs {
		kids[st.ppid] = append(kids[st.ppid], p)
	}
	total := root.cpu + root.children
	stack := append([]int(nil), kids[pid]...)
	for seen := 0; len(stack) > 0 && seen < len(procs); seen++ {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		st := procs[p]
		total += st.cpu + st.children
		stack = append(stack, kids[p]...)
	}
	return total
}

// parseProcStat reads fields 4 (ppid), 14 and 15 (utime, stime), 16 and 17
// (cutime, cstime) of a stat line; the command name (field 2) is in
// parentheses and may hold spaces.
func parseProcStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short stat line")
	}
	var v [5]uint64
	for k, n := range []int{4, 14, 15, 16, 17} {
		x, err := strconv.ParseUint(f[n-3], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("malformed field %d", n)
		}
		v[k] = x
	}
	tick := func(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return procStat{ppid: int(v[0]), cpu: tick(v[1] + v[2]), children: tick(v[3] + v[4])}, nil
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
