package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestReportTableAndJSON(t *testing.T) {
	tick := time.Second / userHZ
	r := &result{
		Name: "refresh", Concurrency: 8, Window: 5 * time.Second, OK: 1000, Failed: 3,
		Errors: map[string]int64{"http_429": 2, "timeout": 1}, FirstErrors: map[string]string{"timeout": "slow"},
		Lat: latencies{P50: 4 * time.Millisecond, P90: 9 * time.Millisecond, P99: 20 * time.Millisecond}, OKPerSec: 200,
		CPU: cpuUsage{Server: 50 * tick, ServerOK: true, PG: 30 * tick, PGOK: true, Self: 10 * tick, SelfOK: true,
			Other: 100 * tick, Capacity: 1000 * tick, MachineOK: true},
		ServerSide: true, Floor: floorUpdate, FloorPerSec: 800, Ratio: 0.25,
	}
	f := &result{Name: floorUpdate, OK: 4000, OKPerSec: 800, PGSide: true,
		CPU: cpuUsage{PG: 20 * tick, PGOK: true, SelfOK: true}}
	var table bytes.Buffer
	writeTable(&table, meta{Started: time.Unix(0, 0), Concurrency: 8}, []*result{r}, []*result{f})
	for _, want := range []string{"0.25× floor:update (800/s)", "http_429:2 timeout:1", "500µs", "300µs", "10%", "refresh: first timeout: slow"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	var out bytes.Buffer
	if err := writeJSON(&out, meta{}, []*result{r}, []*result{f}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Scenarios []map[string]any `json:"scenarios"`
		Floors    []map[string]any `json:"floors"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Scenarios[0]
	if s["authd_cpu_ms_per_op"] != 0.5 || s["pg_cpu_ms_per_op"] != 0.3 || s["ratio_to_floor"] != 0.25 || s["p99_ms"] != 20.0 {
		t.Errorf("scenario JSON: %v", s)
	}
	if fl := doc.Floors[0]; fl["authd_cpu_ms_per_op"] != nil || fl["pg_cpu_ms_per_op"] != 0.05 {
		t.Errorf("floor JSON: authd %v (want null), pg %v (want 0.05)", fl["authd_cpu_ms_per_op"], fl["pg_cpu_ms_per_op"])
	}
}
