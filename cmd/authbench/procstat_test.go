package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// statLine builds a /proc/PID/stat line as Linux 6.x prints it (52 fields)
// with the given name and times.
func statLine(pid int, comm string, ppid int, utime, stime, cutime, cstime uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 1234 0 0 0 %d %d %d %d 20 0 1 0 98765 "+
		"219512832 4567 18446744073709551615 1 1 0 0 0 0 0 4096 16384 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0",
		pid, comm, ppid, pid, pid, utime, stime, cutime, cstime)
}

func TestParseStatNameWithSpacesAndParentheses(t *testing.T) {
	// A process may call itself anything up to 15 bytes, ")" and " " included.
	line := statLine(4242, "post (gres)) x", 17, 1500, 250, 30, 7) + "\n"
	s, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{PID: 4242, Comm: "post (gres)) x", State: 'S', PPID: 17,
		UTime: 1500, STime: 250, CUTime: 30, CSTime: 7, Start: 98765}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if s.Own() != 1750 || s.WithChildren() != 1787 {
		t.Errorf("Own %d WithChildren %d, want 1750 1787", s.Own(), s.WithChildren())
	}
	for _, bad := range []string{"", "12 no parens S 1", "x (a) S 1 2", "12 (a) S 1 2 3"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseOwnStat(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	s, err := readStat("/proc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != os.Getpid() || s.PPID != os.Getppid() {
		t.Errorf("read pid %d ppid %d, want %d %d", s.PID, s.PPID, os.Getpid(), os.Getppid())
	}
}

// fakeProc is a /proc directory the test writes.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) *fakeProc {
	root := t.TempDir()
	for _, d := range []string{"sys", "self"} { // not processes, or not numbered
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &fakeProc{t: t, root: root}
	p.set("self", statLine(999, "authbench", 1, 0, 0, 0, 0))
	p.cpu(0, 0)
	return p
}

func (p *fakeProc) set(pid, line string) {
	p.t.Helper()
	dir := filepath.Join(p.root, pid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line+"\n"), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *fakeProc) proc(pid int, comm string, ppid int, u, s, cu, cs uint64) {
	p.set(fmt.Sprint(pid), statLine(pid, comm, ppid, u, s, cu, cs))
}

func (p *fakeProc) exit(pid int) {
	if err := os.RemoveAll(filepath.Join(p.root, fmt.Sprint(pid))); err != nil {
		p.t.Fatal(err)
	}
}

// cpu writes /proc/stat with busy and idle ticks.
func (p *fakeProc) cpu(busy, idle uint64) {
	line := fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n", busy, idle)
	if err := os.WriteFile(filepath.Join(p.root, "stat"), []byte(line), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func TestScanProcsSumsChildrenAndKernelThreads(t *testing.T) {
	p := newFakeProc(t)
	p.proc(2, "kthreadd", 0, 0, 3, 0, 0)
	p.proc(35, "kworker/u8:2-ext4-rsv-conversion", 2, 0, 200, 0, 0)
	p.proc(100, "postgres", 1, 5, 5, 0, 0)
	p.proc(101, "postgres: authd authd 127.0.0.1(4242) idle", 100, 30, 10, 0, 0)
	p.proc(102, "postgres: walwriter", 100, 4, 6, 1, 1)
	p.proc(200, "authd", 1, 500, 100, 0, 0) // not a child
	p.proc(201, "child of authd", 200, 7, 7, 0, 0)
	sum, n, kernel, err := scanProcs(p.root, 100)
	if err != nil {
		t.Fatal(err)
	}
	if sum != 30+10+4+6+1+1 || n != 2 {
		t.Errorf("children of 100: %d ticks in %d processes, want 52 in 2", sum, n)
	}
	if kernel != 203 {
		t.Errorf("kernel threads: %d ticks, want 203", kernel)
	}
}

// A backend that exits inside the window is not lost: the postmaster's
// cutime/cstime take its whole life when it is reaped, and its reading
// before the window is subtracted.
func TestCPUDeltaKeepsChildrenThatExitMidWindow(t *testing.T) {
	p := newFakeProc(t)
	m := &cpuMeter{root: p.root, serverPID: 200, pgPID: 100}
	p.proc(100, "postgres", 1, 5, 5, 0, 0)
	p.proc(101, "postgres: backend a", 100, 30, 10, 0, 0) // exits mid-window
	p.proc(102, "postgres: backend b", 100, 10, 0, 0, 0)
	p.proc(200, "authd", 1, 500, 100, 0, 0)
	p.proc(35, "kworker/0:1-events", kthreadd, 0, 70, 0, 0)
	p.set("self", statLine(999, "authbench", 1, 40, 10, 0, 0))
	p.cpu(1000, 1000)
	before := m.sample()
	if !before.ServerOK || !before.PGOK || !before.KernelOK || !before.SelfOK || !before.MachineOK || before.PGChildren != 2 {
		t.Fatalf("before: %+v", before)
	}

	// In the window: a spent 20 more ticks (60 in all) and exited, b spent
	// 15, c was born and spent 5, the postmaster 2, authd 300, a kworker
	// 8, authbench 50.
	p.exit(101)
	p.proc(100, "postgres", 1, 6, 6, 45, 15) // reaped a: its 60 ticks
	p.proc(102, "postgres: backend b", 100, 25, 0, 0, 0)
	p.proc(103, "postgres: backend c", 100, 3, 2, 0, 0)
	p.proc(200, "authd", 1, 750, 150, 0, 0)
	p.proc(35, "kworker/0:1-events", kthreadd, 0, 78, 0, 0)
	p.set("self", statLine(999, "authbench", 1, 80, 20, 0, 0))
	p.cpu(1000+400+20, 1000+180) // busy: 300+42+8+50 tracked, 20 other
	after := m.sample()

	u := cpuDelta(before, after)
	tick := time.Second / userHZ
	if u.PG != (20+15+5+2)*tick {
		t.Errorf("PostgreSQL: %s, want %s", u.PG, (20+15+5+2)*tick)
	}
	if u.Server != 300*tick || u.Self != 50*tick {
		t.Errorf("authd %s, authbench %s, want 3s and 500ms", u.Server, u.Self)
	}
	if u.PGChildren != [2]int{2, 2} {
		t.Errorf("children before/after: %v", u.PGChildren)
	}
	if u.Kernel != 8*tick {
		t.Errorf("kernel threads: %s, want 80ms", u.Kernel)
	}
	if u.Capacity != 600*tick || u.Other != 20*tick {
		t.Errorf("capacity %s other %s, want 6s and 200ms", u.Capacity, u.Other)
	}
}

func TestCPUSampleWithoutPids(t *testing.T) {
	p := newFakeProc(t)
	m := &cpuMeter{root: p.root, serverPID: 0, pgPID: 31337} // 31337 does not exist
	u := cpuDelta(m.sample(), m.sample())
	if u.ServerOK || u.PGOK || !u.SelfOK {
		t.Errorf("got %+v: want only authbench measured", u)
	}
}
