package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The scalar types below validate themselves while the YAML is decoded and
// report problems as *yaml.TypeError, which yaml.v3 collects (with the line)
// instead of stopping at the first one. That is how `cutover config check`
// lists every error in one pass.

func typeErr(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...))}}
}

func scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", typeErr(n, "expected %s, got a %s", what, kindName(n.Kind))
	}
	return n.Value, nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar"
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} references with the variable's value; an unset
// variable is an error (an empty credential is never what anyone meant).
func expandEnv(n *yaml.Node, s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", typeErr(n, "environment variable %s is not set (referenced as ${%s})", strings.Join(missing, ", "), missing[0])
	}
	return out, nil
}

// Duration is a time.Duration written as a Go duration string ("250ms", "5s", "1h30m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "a duration such as 250ms or 5s")
	if err != nil {
		return err
	}
	v, perr := time.ParseDuration(s)
	if perr != nil {
		return typeErr(n, "invalid duration %q: expected a number with a unit, such as 250ms, 5s or 2m", s)
	}
	if v < 0 {
		return typeErr(n, "invalid duration %q: must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Secret is a credential. ${VAR} references are expanded from the
// environment; its value never prints: String, MarshalText and MarshalYAML
// all give "[redacted]".
type Secret string

// UnmarshalYAML implements yaml.Unmarshaler. A reference to an unset
// variable leaves the secret empty: Parse lists it (Config.Unset), Load
// reports it, and a command asks only for the ones it uses (RequireEnv).
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a string")
	if err != nil {
		return err
	}
	if v, err = expandEnv(n, v); err != nil {
		*s = ""
		return nil
	}
	*s = Secret(v)
	return nil
}

// Value returns the secret itself, for the one place that sends it.
func (s Secret) Value() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// URL is an absolute http or https URL; ${VAR} references are expanded.
type URL string

// UnmarshalYAML implements yaml.Unmarshaler.
func (u *URL) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a URL")
	if err != nil {
		return err
	}
	v, err = expandEnv(n, v)
	if err != nil {
		return err
	}
	p, perr := url.Parse(v)
	if perr != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return typeErr(n, "invalid URL %q: expected an absolute http:// or https:// URL such as https://api.example.com/v1", v)
	}
	*u = URL(strings.TrimRight(v, "/"))
	return nil
}

func (u URL) String() string { return string(u) }

// Addr is a listen address host:port.
type Addr string

// UnmarshalYAML implements yaml.Unmarshaler.
func (a *Addr) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a host:port address")
	if err != nil {
		return err
	}
	host, port, perr := net.SplitHostPort(v)
	if perr != nil {
		return typeErr(n, "invalid address %q: expected host:port such as 127.0.0.1:9101", v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return typeErr(n, "invalid address %q: port must be 0–65535", v)
	}
	_ = host
	*a = Addr(v)
	return nil
}

func (a Addr) String() string { return string(a) }

// IsLoopback reports whether a binds only to a loopback interface.
func (a Addr) IsLoopback() bool {
	host, _, err := net.SplitHostPort(string(a))
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Rate is a probability or share written as a fraction 0–1 ("0.023") or a
// percentage ("2.3%").
type Rate float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a rate such as 0.05 or 5%")
	if err != nil {
		return err
	}
	s, scale := strings.TrimSpace(v), 1.0
	if strings.HasSuffix(s, "%") {
		s, scale = strings.TrimSpace(strings.TrimSuffix(s, "%")), 0.01
	}
	f, perr := strconv.ParseFloat(s, 64)
	if perr != nil || f*scale < 0 || f*scale > 1 {
		return typeErr(n, "invalid rate %q: expected a fraction 0–1 such as 0.05, or a percentage such as 5%%", v)
	}
	*r = Rate(f * scale)
	return nil
}

// F returns r as a float64.
func (r Rate) F() float64 { return float64(r) }

// Format names a wire format.
type Format string

// The wire formats cutover speaks. Each has a package under vision/.
const (
	FormatRekognition Format = "rekognition"
	FormatGCV         Format = "gcv"
	FormatAzure       Format = "azure"
	FormatHolySheep   Format = "holysheep"
	// FormatOpenAI is OpenAI-compatible Chat Completions with image input:
	// HolySheep's relay and most vision LLMs.
	FormatOpenAI Format = "openai"
	// FormatTencent is Tencent Cloud TIIA (image analysis, API 3.0,
	// TC3-HMAC-SHA256 signing): DetectLabelPro and DetectProduct.
	FormatTencent Format = "tencent"
	// FormatBaidu is Baidu AI Cloud image recognition (advanced_general,
	// OAuth client-credentials token).
	FormatBaidu Format = "baidu"
)

// Formats lists the supported wire formats.
var Formats = []Format{FormatRekognition, FormatGCV, FormatAzure, FormatHolySheep, FormatOpenAI, FormatTencent, FormatBaidu}

// UnmarshalYAML implements yaml.Unmarshaler.
// Signs reports whether the format authenticates a request by signing it
// with a key pair (rekognition: SigV4; tencent: TC3-HMAC-SHA256) rather
// than by sending a key.
func (f Format) Signs() bool { return f == FormatRekognition || f == FormatTencent }

func (f *Format) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a wire format")
	if err != nil {
		return err
	}
	for _, k := range Formats {
		if Format(v) == k {
			*f = k
			return nil
		}
	}
	names := make([]string, len(Formats))
	for i, k := range Formats {
		names[i] = string(k)
	}
	return typeErr(n, "unknown format %q: expected one of %s", v, strings.Join(names, ", "))
}

// Clock is a wall-clock time of day "HH:MM".
type Clock struct{ Hour, Minute int }

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Clock) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a time of day HH:MM")
	if err != nil {
		return err
	}
	t, perr := time.Parse("15:04", v)
	if perr != nil {
		return typeErr(n, "invalid time of day %q: expected HH:MM such as 09:00", v)
	}
	*c = Clock{t.Hour(), t.Minute()}
	return nil
}

// Minutes returns minutes since midnight.
func (c Clock) Minutes() int { return c.Hour*60 + c.Minute }

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// MarshalText implements encoding.TextMarshaler.
func (c Clock) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Zone is an IANA time zone name such as Asia/Singapore.
type Zone struct{ *time.Location }

// UnmarshalYAML implements yaml.Unmarshaler.
func (z *Zone) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a time zone")
	if err != nil {
		return err
	}
	loc, lerr := time.LoadLocation(v)
	if lerr != nil {
		return typeErr(n, "unknown time zone %q: expected an IANA name such as Asia/Singapore or UTC", v)
	}
	*z = Zone{loc}
	return nil
}

// Loc returns the location, UTC when unset.
func (z Zone) Loc() *time.Location {
	if z.Location == nil {
		return time.UTC
	}
	return z.Location
}

// MarshalText implements encoding.TextMarshaler.
func (z Zone) MarshalText() ([]byte, error) { return []byte(z.Loc().String()), nil }

// Timestamp is an RFC 3339 time.
type Timestamp struct{ time.Time }

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Timestamp) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "an RFC 3339 time")
	if err != nil {
		return err
	}
	p, perr := time.Parse(time.RFC3339, v)
	if perr != nil {
		return typeErr(n, "invalid time %q: expected RFC 3339 such as 2026-11-27T09:30:00+08:00", v)
	}
	t.Time = p
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalar(n, "a size such as 8MiB")
	if err != nil {
		return err
	}
	size, perr := parseByteSize(v)
	if perr != nil {
		return typeErr(n, "invalid size %q: expected bytes or a number with a unit, such as 512KiB, 8MiB or 1GiB", v)
	}
	*b = ByteSize(size)
	return nil
}
