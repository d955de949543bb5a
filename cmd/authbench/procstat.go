package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat and /proc/stat
// (USER_HZ, sysconf(_SC_CLK_TCK)): 100 on every Linux architecture Go
// supports, fixed by the kernel's user-space ABI whatever CONFIG_HZ is.
const userHZ = 100

// ticks converts clock ticks to a duration.
func ticks(n uint64) time.Duration { return time.Duration(n) * (time.Second / userHZ) }

// procStat is what authbench reads from one /proc/PID/stat line (proc(5)).
type procStat struct {
	PID    int
	Comm   string // the name between the parentheses, which may hold both spaces and parentheses
	State  byte
	PPID   int
	UTime  uint64 // field 14: user time, ticks
	STime  uint64 // field 15: system time
	CUTime uint64 // field 16: user time of waited-for (reaped) children
	CSTime uint64 // field 17: system time of waited-for children
	Start  uint64 // field 22: start time after boot, ticks (tells a reused pid apart)
}

// Own is the process's own CPU time.
func (s procStat) Own() uint64 { return s.UTime + s.STime }

// WithChildren adds the CPU time of the children it has reaped.
func (s procStat) WithChildren() uint64 { return s.UTime + s.STime + s.CUTime + s.CSTime }

// parseStat parses one /proc/PID/stat line. The command name is everything
// between the first '(' and the last ')': a process may name itself
// "a) (b", so only the last ')' ends it.
func parseStat(line string) (procStat, error) {
	line = strings.TrimRight(line, "\n")
	open := strings.IndexByte(line, '(')
	closing := strings.LastIndexByte(line, ')')
	if open < 1 || closing < open {
		return procStat{}, fmt.Errorf("stat line %q: no (comm)", truncateString(line, 80))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("stat line: pid: %w", err)
	}
	rest := strings.Fields(line[closing+1:])
	// rest[0] is field 3 (state); field n is rest[n-3].
	const need = 22 - 3 + 1
	if len(rest) < need {
		return procStat{}, fmt.Errorf("stat line for pid %d: %d fields after comm, want at least %d", pid, len(rest), need)
	}
	s := procStat{PID: pid, Comm: line[open+1 : closing]}
	if len(rest[0]) != 1 {
		return procStat{}, fmt.Errorf("stat line for pid %d: state %q", pid, rest[0])
	}
	s.State = rest[0][0]
	if s.PPID, err = strconv.Atoi(rest[4-3]); err != nil {
		return procStat{}, fmt.Errorf("stat line for pid %d: ppid: %w", pid, err)
	}
	for _, f := range []struct {
		field int
		dst   *uint64
	}{{14, &s.UTime}, {15, &s.STime}, {16, &s.CUTime}, {17, &s.CSTime}, {22, &s.Start}} {
		// cutime and cstime are signed in the kernel (long) but never negative.
		if *f.dst, err = strconv.ParseUint(rest[f.field-3], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("stat line for pid %d: field %d: %w", pid, f.field, err)
		}
	}
	return s, nil
}

// readStat reads /proc/PID/stat under root ("/proc" outside tests); pid 0
// means "self".
func readStat(root string, pid int) (procStat, error) {
	name := "self"
	if pid != 0 {
		name = strconv.Itoa(pid)
	}
	b, err := os.ReadFile(filepath.Join(root, name, "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// kthreadd is the parent of every kernel thread (and pid 2 itself is one).
const kthreadd = 2

// scanProcs reads every process under root once and sums the CPU time (own
// plus reaped children's) of the children of ppid, counting them, and of
// the kernel's threads (kthreadd and its children: the kworkers that do
// I/O completion and ext4 work for fsync, ksoftirqd, …). Processes that
// vanish while the directory is read are skipped; the scan is bounded by
// the number of entries of root.
func scanProcs(root string, ppid int) (children uint64, n int, kernel uint64, err error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue // not a process directory
		}
		s, err := readStat(root, pid)
		if err != nil {
			continue // exited meanwhile, or unreadable
		}
		if ppid > 0 && s.PPID == ppid {
			children += s.WithChildren()
			n++
		}
		if s.PID == kthreadd || s.PPID == kthreadd {
			kernel += s.Own()
		}
	}
	return children, n, kernel, nil
}

// machineBusy reads the first line of /proc/stat: the busy ticks of all
// CPUs (user, nice, system, irq, softirq, steal; idle and iowait excluded,
// guest time is already inside user) and the total.
func machineBusy(root string) (busy, total uint64, err error) {
	f, err := os.Open(filepath.Join(root, "stat"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, errors.New("/proc/stat is empty")
	}
	return parseCPULine(sc.Bytes())
}

func parseCPULine(line []byte) (busy, total uint64, err error) {
	fields := bytes.Fields(line)
	if len(fields) < 8 || string(fields[0]) != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", truncateString(string(line), 80))
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseUint(string(fields[i+1]), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return busy, busy + v[3] + v[4], nil
}

// cpuMeter samples the CPU time of authd (serverPID), of PostgreSQL (pgPID,
// the postmaster, with its children), of the kernel's threads and of
// authbench itself. A zero pid is not measured.
type cpuMeter struct {
	root      string
	serverPID int
	pgPID     int
}

// cpuSample is one reading; the *OK fields say whether it could be read.
type cpuSample struct {
	Server, PG, Kernel, Self         uint64
	ServerOK, PGOK, KernelOK, SelfOK bool
	PGChildren                       int
	Busy, Total                      uint64 // the whole machine
	MachineOK                        bool
}

// sample reads everything once. For the postmaster it reads the
// postmaster's own line first (its cutime/cstime hold every child it has
// reaped so far), then its live children. A backend that exits between two
// samples is therefore not lost: its last reading is in the "before" sum,
// and its whole life is in the postmaster's cutime/cstime "after", so the
// difference is exactly its CPU inside the window. What remains unseen is a
// child that exits and is reaped in the microseconds between the
// postmaster's line and the scan of children (missed in that one sample).
func (m *cpuMeter) sample() cpuSample {
	var s cpuSample
	if m.serverPID > 0 {
		if st, err := readStat(m.root, m.serverPID); err == nil {
			s.Server, s.ServerOK = st.WithChildren(), true
		}
	}
	pm, pmErr := procStat{}, error(nil)
	if m.pgPID > 0 {
		pm, pmErr = readStat(m.root, m.pgPID)
	}
	if children, n, kernel, err := scanProcs(m.root, m.pgPID); err == nil {
		s.Kernel, s.KernelOK = kernel, kernel > 0 // no kernel thread visible: another pid namespace
		if m.pgPID > 0 && pmErr == nil {
			s.PG, s.PGChildren, s.PGOK = pm.WithChildren()+children, n, true
		}
	}
	if st, err := readStat(m.root, 0); err == nil {
		s.Self, s.SelfOK = st.WithChildren(), true
	}
	if busy, total, err := machineBusy(m.root); err == nil {
		s.Busy, s.Total, s.MachineOK = busy, total, true
	}
	return s
}

// cpuUsage is the CPU spent between two samples.
type cpuUsage struct {
	Server, PG, Kernel, Self         time.Duration
	ServerOK, PGOK, KernelOK, SelfOK bool
	PGChildren                       [2]int // live children before and after
	// Other is the machine's busy time not attributed to the four above
	// (other processes; interrupts that hit the idle task), and Capacity
	// all CPUs' time in the window.
	Other, Capacity time.Duration
	MachineOK       bool
}

func cpuDelta(a, b cpuSample) cpuUsage {
	var u cpuUsage
	sub := func(x, y uint64) uint64 {
		if y < x { // cannot happen for one process; guards a reused pid
			return 0
		}
		return y - x
	}
	if a.ServerOK && b.ServerOK {
		u.Server, u.ServerOK = ticks(sub(a.Server, b.Server)), true
	}
	if a.PGOK && b.PGOK {
		u.PG, u.PGOK = ticks(sub(a.PG, b.PG)), true
		u.PGChildren = [2]int{a.PGChildren, b.PGChildren}
	}
	if a.KernelOK && b.KernelOK {
		u.Kernel, u.KernelOK = ticks(sub(a.Kernel, b.Kernel)), true
	}
	if a.SelfOK && b.SelfOK {
		u.Self, u.SelfOK = ticks(sub(a.Self, b.Self)), true
	}
	if a.MachineOK && b.MachineOK {
		busy := ticks(sub(a.Busy, b.Busy))
		u.Capacity, u.MachineOK = ticks(sub(a.Total, b.Total)), true
		u.Other = max(busy-u.Server-u.PG-u.Kernel-u.Self, 0)
	}
	return u
}

// add sums the usage of two windows; a figure counts as measured only if
// it was in both.
func (u cpuUsage) add(o cpuUsage) cpuUsage {
	return cpuUsage{
		Server: u.Server + o.Server, PG: u.PG + o.PG, Kernel: u.Kernel + o.Kernel, Self: u.Self + o.Self,
		ServerOK: u.ServerOK && o.ServerOK, PGOK: u.PGOK && o.PGOK, KernelOK: u.KernelOK && o.KernelOK,
		SelfOK:     u.SelfOK && o.SelfOK,
		PGChildren: [2]int{u.PGChildren[0], o.PGChildren[1]},
		Other:      u.Other + o.Other, Capacity: u.Capacity + o.Capacity, MachineOK: u.MachineOK && o.MachineOK,
	}
}
