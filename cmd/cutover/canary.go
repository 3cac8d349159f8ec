package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func canaryCmd() *command {
	fs := flag.NewFlagSet("canary", flag.ContinueOnError)
	admin := fs.String("admin", "127.0.0.1:9091", "the proxy's admin listener (proxy.admin_listen)")
	tokenEnv := fs.String("token-env", "CUTOVER_ADMIN_TOKEN", "environment variable holding the admin bearer token (mutations)")
	asJSON := fs.Bool("json", false, "print the proxy's JSON answer")
	return &command{
		fs:      fs,
		summary: "show or steer a running canary: status, set PERCENT, pause, resume, rollback, promote",
		usage:   "[--admin 127.0.0.1:9091] [--json] status | set PERCENT | pause | resume | rollback | promote",
		example: "cutover canary status\nCUTOVER_ADMIN_TOKEN=… cutover canary set 25\ncutover canary rollback",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 0 {
				return usagef("want a subcommand: status, set PERCENT, pause, resume, rollback or promote")
			}
			method, path, body := http.MethodPost, "", ""
			switch args[0] {
			case "status":
				method, path = http.MethodGet, "/admin/canary"
			case "set":
				if len(args) != 2 {
					return usagef("want: cutover canary set PERCENT")
				}
				pct, err := strconv.ParseFloat(args[1], 64)
				if err != nil || pct < 0 || pct > 100 {
					return usagef("PERCENT %q: expected a number from 0 to 100", args[1])
				}
				path, body = "/admin/canary", fmt.Sprintf(`{"percent": %g}`, pct)
			case "pause", "resume", "rollback", "promote":
				path = "/admin/" + args[0]
			default:
				return usagef("unknown subcommand %q", args[0])
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, method, "http://"+*admin+path, strings.NewReader(body))
			if err != nil {
				return usagef("--admin %q: %v", *admin, err)
			}
			// The token goes with every call when it is set: an admin
			// listener bound off loopback needs it for GETs too.
			tok := os.Getenv(*tokenEnv)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			if method == http.MethodPost {
				if tok == "" {
					return fmt.Errorf("$%s is not set: mutating the canary needs the admin bearer token", *tokenEnv)
				}
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("reaching the proxy's admin listener: %w", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				var e struct{ Error string }
				json.Unmarshal(b, &e)
				return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, e.Error)
			}
			if *asJSON {
				_, err := io.Copy(env.Stdout, bytes.NewReader(b))
				return err
			}
			return printCanary(env, b)
		},
	}
}

func printCanary(env *Env, b []byte) error {
	var s struct {
		Mode  string `json:"mode"`
		Note  string `json:"note"`
		State *struct {
			Step       int     `json:"step"`
			Percent    float64 `json:"percent"`
			Paused     bool    `json:"paused"`
			Manual     bool    `json:"manual"`
			RolledBack bool    `json:"rolled_back"`
			Complete   bool    `json:"complete"`
			History    []struct {
				Time   time.Time `json:"time"`
				Kind   string    `json:"kind"`
				From   float64   `json:"from"`
				To     float64   `json:"to"`
				Reason string    `json:"reason"`
			} `json:"history"`
		} `json:"state"`
		Window struct {
			Requests  int64   `json:"requests"`
			ErrorRate float64 `json:"error_rate"`
			P99Ms     float64 `json:"p99_ms"`
		} `json:"window"`
		Breaker map[string]any `json:"breaker"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("unexpected answer from the admin listener: %w", err)
	}
	if s.State == nil {
		fmt.Fprintf(env.Stdout, "mode %s: %s\n", s.Mode, s.Note)
		return nil
	}
	st := s.State
	flags := []string{}
	for _, f := range []struct {
		on   bool
		name string
	}{{st.Paused, "paused"}, {st.Manual, "manual"}, {st.RolledBack, "rolled back"}, {st.Complete, "complete"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	step := "no steps"
	if st.Step >= 0 {
		step = fmt.Sprintf("step %d", st.Step+1)
	}
	extra := ""
	if len(flags) > 0 {
		extra = " (" + strings.Join(flags, ", ") + ")"
	}
	fmt.Fprintf(env.Stdout, "mode %s, %s, %g %% answered by the candidate%s\n", s.Mode, step, st.Percent, extra)
	fmt.Fprintf(env.Stdout, "window: %d candidate answers, error rate %.2f %%, p99 %.0f ms\n", s.Window.Requests, 100*s.Window.ErrorRate, s.Window.P99Ms)
	if s.Breaker != nil {
		fmt.Fprintf(env.Stdout, "breaker: %v\n", s.Breaker["state"])
	}
	h := st.History
	if len(h) > 8 {
		h = h[len(h)-8:]
	}
	for _, t := range h {
		fmt.Fprintf(env.Stdout, "  %s %-8s %g %% → %g %%  %s\n", t.Time.UTC().Format("15:04:05"), t.Kind, t.From, t.To, t.Reason)
	}
	return nil
}
