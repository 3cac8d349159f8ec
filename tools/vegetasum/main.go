// Command vegetasum prints one line from a `vegeta report -type json`
// file: requests, success share, p50, p99 and max latency in ms. It is a
// benchmark helper, not part of the cutover CLI.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

type report struct {
	Requests  int64 `json:"requests"`
	Rate      float64
	Success   float64 `json:"success"`
	Latencies struct {
		P50 int64 `json:"50th"`
		P99 int64 `json:"99th"`
		Max int64 `json:"max"`
	} `json:"latencies"`
	StatusCodes map[string]int64 `json:"status_codes"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vegetasum report.json")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d %.4f %.2f %.2f %.2f\n", r.Requests, r.Success, float64(r.Latencies.P50)/1e6, float64(r.Latencies.P99)/1e6, float64(r.Latencies.Max)/1e6)
}
