package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// meta describes the run, for the report's header and the JSON.
type meta struct {
	Started         time.Time `json:"started"`
	URL             string    `json:"url"`
	Concurrency     int       `json:"concurrency"`
	Duration        string    `json:"duration"`
	Warmup          string    `json:"warmup"`
	FloorDuration   string    `json:"floor_duration"`
	CPUs            int       `json:"cpus"`
	GoVersion       string    `json:"go_version"`
	ServerPID       int       `json:"server_pid,omitempty"`
	PGPID           int       `json:"pg_pid,omitempty"`
	PGVersion       string    `json:"pg_version,omitempty"`
	SyncCommit      string    `json:"pg_synchronous_commit,omitempty"`
	Fsync           string    `json:"pg_fsync,omitempty"`
	OtherBackends   int       `json:"pg_other_client_backends"`
	LoadAvgStart    string    `json:"loadavg_start,omitempty"`
	LoadAvgEnd      string    `json:"loadavg_end,omitempty"`
	PrivateAuthd    bool      `json:"private_authd"`
	Notes           []string  `json:"notes,omitempty"`
	ClockTicksPerS  int       `json:"clock_ticks_per_s"`
	RunID           string    `json:"run_id"`
	ScenariosChosen []string  `json:"scenarios"`
}

// writeTable prints the summary: one line per scenario (and per part of the
// mix), then the floors, then the notes.
func writeTable(w io.Writer, m meta, results []*result, floors []*result) {
	fmt.Fprintf(w, "authbench %s: %s, -c %d, -d %s, warmup %s, floors %s; %d CPUs", m.Started.Format(time.RFC3339),
		m.URL, m.Concurrency, m.Duration, m.Warmup, m.FloorDuration, m.CPUs)
	if m.PGVersion != "" {
		fmt.Fprintf(w, "; PostgreSQL %s synchronous_commit=%s fsync=%s", m.PGVersion, m.SyncCommit, m.Fsync)
	}
	fmt.Fprintln(w)
	// Names left-aligned (padded here), figures right-aligned.
	width := len("scenario")
	for _, r := range append(append([]*result(nil), results...), floors...) {
		width = max(width, len(r.Name))
		for _, s := range r.Sub {
			width = max(width, len(s.Name)+2)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tops\tok/s\tp50\tp90\tp99\terrors\tauthd/op\tpg/op\tkernel/op\tclient/op\tother cpu\t  vs floor\n", width, "scenario")
	row := func(r *result, indent string, showFloor bool) {
		vs := ""
		if showFloor && r.Floor != "" {
			vs = fmt.Sprintf("%.2f× %s (%s/s)", r.Ratio, r.Floor, formatRate(r.FloorPerSec))
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t  %s\n", width, indent+r.Name, r.OK,
			formatRate(r.OKPerSec), formatDuration(r.Lat.P50), formatDuration(r.Lat.P90), formatDuration(r.Lat.P99),
			formatKinds(r.Errors), cpuCell(r, r.CPU.Server, r.CPU.ServerOK && r.ServerSide),
			cpuCell(r, r.CPU.PG, r.CPU.PGOK && (r.ServerSide || r.PGSide)), cpuCell(r, r.CPU.Kernel, r.CPU.KernelOK),
			cpuCell(r, r.CPU.Self, r.CPU.SelfOK),
			otherCell(r.CPU), vs)
	}
	for _, r := range results {
		row(r, "", true)
		for _, s := range r.Sub {
			row(s, "  ", false)
		}
	}
	for _, f := range floors {
		row(f, "", false)
	}
	tw.Flush()
	fmt.Fprintln(w, "vs floor: ok/s divided by the floor's ok/s (scenario and floor measured in alternating slices).")
	fmt.Fprintln(w, "x/op: CPU time per successful operation of authd, of PostgreSQL (postmaster and children), of the")
	fmt.Fprintln(w, "kernel's threads (kworkers: fsync and I/O completion, whoever caused it) and of authbench; other cpu:")
	fmt.Fprintln(w, "the machine's busy time outside all those, as a share of all CPUs (noise from other processes).")
	fmt.Fprintln(w, "Latencies are of successful operations only.")
	for _, r := range append(append([]*result(nil), results...), floors...) {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s: %s\n", r.Name, n)
		}
		for _, k := range sortedKeys(r.FirstErrors) {
			fmt.Fprintf(w, "  %s: first %s: %s\n", r.Name, k, r.FirstErrors[k])
		}
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// cpuCell is the CPU per operation, or "-" where it was not measured or
// does not apply (a result with no successful operation included).
func cpuCell(r *result, d time.Duration, ok bool) string {
	if !ok || r.OK == 0 {
		return "-"
	}
	if d == 0 {
		return "0"
	}
	return formatDuration(r.perOp(d))
}

func otherCell(u cpuUsage) string {
	if !u.MachineOK || u.Capacity <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(u.Other)/float64(u.Capacity))
}

// jsonResult is a result for machines: times in milliseconds, null where
// not measured.
type jsonResult struct {
	Name          string            `json:"name"`
	What          string            `json:"what"`
	Concurrency   int               `json:"concurrency"`
	WindowS       float64           `json:"window_s"`
	OK            int64             `json:"ok"`
	Failed        int64             `json:"errors_total"`
	Errors        map[string]int64  `json:"errors"`
	FirstErrors   map[string]string `json:"first_errors,omitempty"`
	OKPerS        float64           `json:"ok_per_s"`
	P50Ms         float64           `json:"p50_ms"`
	P90Ms         float64           `json:"p90_ms"`
	P99Ms         float64           `json:"p99_ms"`
	MaxMs         float64           `json:"max_ms"`
	AuthdCPUMsOp  *float64          `json:"authd_cpu_ms_per_op"`
	PGCPUMsOp     *float64          `json:"pg_cpu_ms_per_op"`
	KernelCPUMsOp *float64          `json:"kernel_threads_cpu_ms_per_op"`
	ClientCPUMsOp *float64          `json:"client_cpu_ms_per_op"`
	OtherCPUShare *float64          `json:"other_cpu_share"`
	PGChildren    [2]int            `json:"pg_children_before_after"`
	Floor         string            `json:"floor,omitempty"`
	FloorDerived  bool              `json:"floor_derived,omitempty"`
	FloorOKPerS   float64           `json:"floor_ok_per_s,omitempty"`
	Ratio         float64           `json:"ratio_to_floor,omitempty"`
	Notes         []string          `json:"notes,omitempty"`
	Sub           []jsonResult      `json:"parts,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func toJSON(r *result) jsonResult {
	j := jsonResult{
		Name: r.Name, What: r.What, Concurrency: r.Concurrency, WindowS: r.Window.Seconds(),
		OK: r.OK, Failed: r.Failed, Errors: r.Errors, FirstErrors: r.FirstErrors, OKPerS: r.OKPerSec,
		P50Ms: ms(r.Lat.P50), P90Ms: ms(r.Lat.P90), P99Ms: ms(r.Lat.P99), MaxMs: ms(r.Lat.Max),
		PGChildren: r.CPU.PGChildren, Floor: r.Floor, FloorDerived: r.FloorDerived,
		FloorOKPerS: r.FloorPerSec, Ratio: r.Ratio, Notes: r.Notes,
	}
	per := func(d time.Duration, ok bool) *float64 {
		if !ok || r.OK == 0 {
			return nil
		}
		v := ms(r.perOp(d))
		return &v
	}
	j.AuthdCPUMsOp = per(r.CPU.Server, r.CPU.ServerOK && r.ServerSide)
	j.PGCPUMsOp = per(r.CPU.PG, r.CPU.PGOK && (r.ServerSide || r.PGSide))
	j.KernelCPUMsOp = per(r.CPU.Kernel, r.CPU.KernelOK)
	j.ClientCPUMsOp = per(r.CPU.Self, r.CPU.SelfOK)
	if r.CPU.MachineOK && r.CPU.Capacity > 0 {
		v := float64(r.CPU.Other) / float64(r.CPU.Capacity)
		j.OtherCPUShare = &v
	}
	if j.Errors == nil {
		j.Errors = map[string]int64{}
	}
	for _, s := range r.Sub {
		j.Sub = append(j.Sub, toJSON(s))
	}
	return j
}

func writeJSON(w io.Writer, m meta, results, floors []*result) error {
	out := struct {
		Meta    meta         `json:"meta"`
		Results []jsonResult `json:"scenarios"`
		Floors  []jsonResult `json:"floors"`
	}{Meta: m, Results: []jsonResult{}, Floors: []jsonResult{}}
	for _, r := range results {
		out.Results = append(out.Results, toJSON(r))
	}
	for _, f := range floors {
		out.Floors = append(out.Floors, toJSON(f))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func loadAvg(root string) string {
	b, err := readFileString(root + "/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(b)
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
