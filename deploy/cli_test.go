package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// cli is the real cutover binary, built once for the package's tests.
type cli struct {
	bin string
	mu  sync.Mutex
	// help caches `cutover help CMD`, parsed; runs every run's result.
	help map[string]*cmdHelp
	runs map[string]result
}

type result struct {
	code int
	out  string
}

// cmdHelp is what `cutover help CMD` says about a command.
type cmdHelp struct {
	synopsis string
	flags    map[string]bool // flag name → takes a value
}

var (
	cliOnce sync.Once
	cliV    *cli
	cliErr  error
)

// buildCLI builds ./cmd/cutover into a temporary folder (with -race when
// the tests run with it, so the build reuses their compiled packages).
func buildCLI(t *testing.T) *cli {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cutover-deploy-test-")
		if err != nil {
			cliErr = err
			return
		}
		bin := filepath.Join(dir, "cutover")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/cutover")...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			cliErr = fmt.Errorf("go build ./cmd/cutover: %v\n%s", err, out)
			return
		}
		cliV = &cli{bin: bin, help: map[string]*cmdHelp{}, runs: map[string]result{}}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliV
}

// run runs the CLI with args and returns its exit code and output (the
// same arguments run once).
func (c *cli) run(args ...string) (int, string) {
	key := strings.Join(args, "\x00")
	c.mu.Lock()
	r, ok := c.runs[key]
	c.mu.Unlock()
	if !ok {
		r.code, r.out = c.exec(args...)
		c.mu.Lock()
		c.runs[key] = r
		c.mu.Unlock()
	}
	return r.code, r.out
}

func (c *cli) exec(args ...string) (int, string) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "CUTOVER_ADMIN_TOKEN=") // never reach a real proxy's admin API
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	return -1, err.Error()
}

var (
	usageLine = regexp.MustCompile(`^Usage: cutover (\S+) ?(.*)$`)
	flagLine  = regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
)

// commandHelp runs `cutover help name` and parses its synopsis and flags.
func (c *cli) commandHelp(name string) (*cmdHelp, error) {
	c.mu.Lock()
	h, ok := c.help[name]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	code, out := c.run("help", name)
	if code != 0 {
		return nil, fmt.Errorf("cutover help %s: exit %d: %s", name, code, out)
	}
	h = &cmdHelp{flags: map[string]bool{}}
	lines := strings.Split(out, "\n")
	inFlags := false
	for i, l := range lines {
		if m := usageLine.FindStringSubmatch(l); m != nil && i == 0 {
			h.synopsis = m[2]
			for j := i + 1; j < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[j]), "|"); j++ {
				h.synopsis += " " + strings.TrimSpace(lines[j])
			}
		}
		switch {
		case l == "Flags:":
			inFlags = true
		case l == "" || l == "Example:":
			inFlags = inFlags && l == ""
		case inFlags:
			if m := flagLine.FindStringSubmatch(l); m != nil {
				h.flags[m[1]] = m[2] != ""
			}
		}
	}
	if h.synopsis == "" {
		return nil, fmt.Errorf("cutover help %s: no usage line in:\n%s", name, out)
	}
	c.mu.Lock()
	c.help[name] = h
	c.mu.Unlock()
	return h, nil
}

// shellWords splits a shell command line into words: quotes, backslash
// escapes, and the end of the command at a comment, a pipe or a list.
func shellWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	quote := rune(0)
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
			continue
		case r == '\'' || r == '"':
			quote, inWord = r, true
			continue
		case r == '\\' && i+1 < len(rs):
			i++
			w.WriteRune(rs[i])
			inWord = true
			continue
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case (r == '#' && !inWord) || r == '|' || r == ';' || r == '&' || r == '>' || r == '<':
			if inWord {
				words = append(words, w.String())
			}
			return words
		}
		w.WriteRune(r)
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

var envAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// cutoverWords returns the words of line from the cutover command on
// (leading VAR=value assignments dropped), or nil if line does not run
// cutover.
func cutoverWords(line string) []string {
	w := shellWords(line)
	for len(w) > 0 && (envAssign.MatchString(w[0]) || w[0] == "$" || w[0] == "sudo") {
		w = w[1:]
	}
	if len(w) < 2 || filepath.Base(w[0]) != "cutover" {
		return nil
	}
	return w
}

// checkCommand checks a cutover command line against the real CLI: the
// command exists; every flag before the first argument is one of its
// flags (and the CLI's own parser accepts them); a flag after an argument
// is one the synopsis lists after that subcommand (and the subcommand's
// parser accepts it), since Go's flag parsing stops at the first argument.
func (c *cli) checkCommand(words []string) error {
	name := words[1]
	h, err := c.commandHelp(name)
	if err != nil {
		return err
	}
	var pre, positional, post []string
	args := words[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		isFlag := strings.HasPrefix(a, "-") && a != "-" && a != "--"
		switch {
		case a == "--" && len(positional) == 0:
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case isFlag && len(positional) == 0:
			fname, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			takes, ok := h.flags[fname]
			if !ok {
				return fmt.Errorf("cutover %s has no flag -%s (it has %v)", name, fname, sortedKeys(h.flags))
			}
			pre = append(pre, a)
			if takes && !hasValue {
				if i+1 >= len(args) {
					return fmt.Errorf("cutover %s: -%s needs a value", name, fname)
				}
				i++
				pre = append(pre, args[i])
			}
		case isFlag:
			post = append(post, args[i:]...)
			i = len(args)
		default:
			positional = append(positional, a)
		}
	}
	if code, out := c.run(append(append([]string{name}, pre...), "-h")...); code != 0 && len(pre) > 0 {
		return fmt.Errorf("cutover %s %s: the CLI's parser refused the flags (exit %d): %s", name, strings.Join(pre, " "), code, firstLine(out))
	}
	if len(positional) > 0 && !synopsisHasArg(h.synopsis, positional[0]) {
		return fmt.Errorf("cutover %s: argument %q is not in its synopsis %q", name, positional[0], h.synopsis)
	}
	if len(post) == 0 {
		return nil
	}
	alt := synopsisAlternative(h.synopsis, positional[0])
	for _, a := range post {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		fname, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.Contains(alt, "--"+fname+" ") && !strings.Contains(alt, "--"+fname+"]") && !strings.HasSuffix(alt, "--"+fname) {
			return fmt.Errorf("cutover %s %s: -%s comes after an argument and is not a flag the synopsis lists there (%q): cutover stops parsing flags at the first argument unless the subcommand takes them", name, positional[0], fname, h.synopsis)
		}
	}
	args = append(append(append([]string{name}, pre...), positional...), post...)
	code, out := c.run(append(args, "-h")...)
	if code != 0 && !strings.Contains(out, "help requested") || strings.Contains(out, "not defined") {
		return fmt.Errorf("cutover %s: the subcommand's parser refused %v (exit %d): %s", strings.Join(args, " "), post, code, firstLine(out))
	}
	return nil
}

// synopsisHasArg: arg is where the synopsis expects a first argument:
// the subcommand word an alternative starts with, or any word where an
// alternative starts with a placeholder (DIR, RUN_DIR...).
func synopsisHasArg(synopsis, arg string) bool {
	for _, alt := range strings.Split(synopsis, " | ") {
		w := firstArg(alt)
		if w == arg {
			return true
		}
		if p := strings.TrimSuffix(w, "..."); p != "" && strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
			return true
		}
	}
	return false
}

// firstArg is the first word of a synopsis alternative that is not a flag,
// a flag's value or an optional [--flag VALUE] group.
func firstArg(alt string) string {
	f := strings.Fields(alt)
	for i := 0; i < len(f); i++ {
		switch w := f[i]; {
		case strings.HasPrefix(w, "[--"):
			for !strings.HasSuffix(f[i], "]") && i+1 < len(f) {
				i++
			}
		case strings.HasPrefix(w, "--"):
			if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") && !strings.HasPrefix(f[i+1], "[") {
				i++
			}
		default:
			return w
		}
	}
	return ""
}

// synopsisAlternative is the part of the synopsis (alternatives split by
// " | ") that starts with the subcommand word.
func synopsisAlternative(synopsis, word string) string {
	for _, alt := range strings.Split(synopsis, " | ") {
		if f := strings.Fields(alt); len(f) > 0 && f[0] == word {
			return alt
		}
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestCheckCommandCatchesMistakes: the command-line check passes real
// command lines and fails a misspelled flag, a flag of another command, a
// flag placed where cutover does not parse it, and an unknown subcommand.
func TestCheckCommandCatchesMistakes(t *testing.T) {
	c := buildCLI(t)
	for _, tc := range []struct {
		line, want string
	}{
		{"cutover proxy --config /etc/cutover/config.yaml", ""},
		{"/usr/local/bin/cutover proxy --config=/etc/cutover/config.yaml --mode canary", ""},
		{"cutover config check --config /etc/cutover/config.yaml", ""},
		{"CUTOVER_ADMIN_TOKEN=… cutover canary --admin 10.0.0.5:9091 set 25", ""},
		{`cutover report --format md --out "go no-go.md" out/runs/a out/runs/b`, ""},
		{"cutover proxy ca init --out /var/lib/cutover/ca", ""},
		{"cutover proxy --confg /etc/cutover/config.yaml", "has no flag -confg"},
		{"cutover proxy --admin 127.0.0.1:9091", "has no flag -admin"},
		{"cutover canary status --admin 10.0.0.5:9091", "comes after an argument"},
		{"cutover config check --confg x.yaml", "-confg comes after an argument"},
		{"cutover canary stats", `argument "stats" is not in its synopsis`},
		{"cutover deploy --config x.yaml", "unknown command"},
	} {
		words := cutoverWords(tc.line)
		if words == nil {
			t.Errorf("%s: not recognised as a cutover command line", tc.line)
			continue
		}
		err := c.checkCommand(words)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error with %q", tc.line, err, tc.want)
		}
	}
}

func TestShellWords(t *testing.T) {
	for line, want := range map[string][]string{
		`cutover proxy --config "/etc/my dir/config.yaml"  # comment`: {"cutover", "proxy", "--config", "/etc/my dir/config.yaml"},
		`FOO=1 cutover canary set 25 | jq .`:                          {"FOO=1", "cutover", "canary", "set", "25"},
		`cutover report a\ b && echo done`:                            {"cutover", "report", "a b"},
		`echo a#b`:                                                    {"echo", "a#b"},
	} {
		if got := shellWords(line); !slices.Equal(got, want) {
			t.Errorf("shellWords(%s) = %q, want %q", line, got, want)
		}
	}
}
