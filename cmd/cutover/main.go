// Command cutover moves product-image tagging from one vision API to
// another with evidence at every step: simulate providers, generate
// labelled fixtures, check config, classify, and (as they land) shadow,
// bench, report and run the post-cutover pipeline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
)

// Exit codes: a public contract for scripts.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// command is one subcommand: its flags, its run function and its help.
type command struct {
	fs      *flag.FlagSet
	summary string
	usage   string // the argument synopsis after "cutover <name>"
	example string
	run     func(ctx context.Context, env *Env, args []string) error
}

// Env is what commands write to; tests give buffers.
type Env struct {
	Stdout, Stderr io.Writer
}

// usageError marks a wrong invocation: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func commands() map[string]*command {
	return map[string]*command{
		"simulate": simulateCmd(),
		"fixtures": fixturesCmd(),
		"config":   configCmd(),
		"classify": classifyCmd(),
		"proxy":    proxyCmd(),
		"bench":    benchCmd(),
		"report":   reportCmd(),
		"canary":   canaryCmd(),
		"pipeline": pipelineCmd(),
		"label":    labelCmd(),
	}
}

func main() {
	// CUTOVER_CPUPROFILE=file writes a CPU profile of the whole command
	// (go tool pprof bin/cutover file): how the benchmarks were profiled.
	if p := os.Getenv("CUTOVER_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], &Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	if code != exitOK {
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}

// Run runs the CLI with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, env *Env) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := cmds[args[1]]; ok {
				printCommandHelp(env.Stdout, args[1], c)
				return exitOK
			}
			fmt.Fprintf(env.Stderr, "cutover: unknown command %q\n\n", args[1])
			printHelp(env.Stderr, cmds)
			return exitUsage
		}
		w := env.Stdout
		code := exitOK
		if len(args) == 0 {
			w, code = env.Stderr, exitUsage
		}
		printHelp(w, cmds)
		return code
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "cutover: unknown command %q (see cutover help)\n", args[0])
		return exitUsage
	}
	c.fs.SetOutput(env.Stderr)
	c.fs.Usage = func() { printCommandHelp(env.Stderr, args[0], c) }
	if err := c.fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	err := c.run(ctx, env, c.fs.Args())
	var ue usageError
	var ec exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return int(ec)
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "cutover %s: %v\n\n", args[0], err)
		printCommandHelp(env.Stderr, args[0], c)
		return exitUsage
	default:
		fmt.Fprintf(env.Stderr, "cutover %s: %v\n", args[0], err)
		return exitRuntime
	}
}

func printHelp(w io.Writer, cmds map[string]*command) {
	fmt.Fprintln(w, "Usage: cutover <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "cutover takes product-image tagging from one vision API to another with evidence.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cutover <command> -h' for a command's flags and an example.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 runtime error, 2 usage error; report: 0 GO, 10 NO-GO, 11 INCONCLUSIVE.")
}

func printCommandHelp(w io.Writer, name string, c *command) {
	fmt.Fprintf(w, "Usage: cutover %s %s\n\n%s\n", name, c.usage, c.summary)
	var b strings.Builder
	c.fs.SetOutput(&b)
	c.fs.PrintDefaults()
	c.fs.SetOutput(w)
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", b.String())
	}
	fmt.Fprintf(w, "\nExample:\n  %s\n", strings.ReplaceAll(c.example, "\n", "\n  "))
}
