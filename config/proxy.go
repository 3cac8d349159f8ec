package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Proxy configures `cutover proxy`.
type Proxy struct {
	// Listen is where clients connect: reverse-mode clients use it as their
	// base URL, forward-mode clients as HTTPS_PROXY. Default 127.0.0.1:8080.
	Listen Addr `yaml:"listen"`
	// AdminListen serves /metrics, /healthz, /readyz, /admin/status, the
	// canary API, /report and pprof. Default 127.0.0.1:9091. Off loopback it
	// needs the admin token (canary.admin_token_env), and every path but
	// /healthz and /readyz then needs it too.
	AdminListen Addr `yaml:"admin_listen"`
	// AdminPublicMetrics serves /metrics without the admin token on an
	// admin listener bound off loopback (for a Prometheus that cannot send
	// a bearer token). Default false.
	AdminPublicMetrics bool `yaml:"admin_public_metrics"`
	// Primary is the provider that answers clients (the legacy API). Required.
	Primary string `yaml:"primary"`
	// Candidate is the provider mirrored to. Required.
	Candidate string `yaml:"candidate"`
	// Mode is shadow (the primary answers, the candidate is mirrored),
	// canary (canary.percent answered by the candidate, translated) or
	// cutover (the candidate answers, the primary is the fallback).
	// Default shadow.
	Mode string `yaml:"mode"`
	// Canary configures canary mode and the fallback of cutover mode.
	Canary Canary `yaml:"canary"`
	// Breaker is the circuit breaker on the candidate in cutover mode.
	Breaker Breaker `yaml:"breaker"`
	// Resign re-signs SigV4 requests with the primary's own credentials
	// when forwarding in reverse mode (the client signed for the proxy's
	// host, and SigV4 binds the host). Rekognition only. Default true. The
	// primary's credentials are lent only to a client verified against
	// clients, and only for allowed_actions.
	Resign *bool `yaml:"resign"`
	// Clients are the identities allowed to use the proxy in reverse mode.
	// Each request's credentials are verified before anything reaches the
	// primary or the candidate: SigV4 formats (rekognition) and TC3
	// (tencent) check the signature with the client's key pair; key and
	// bearer formats compare the client's api_key. A request that fails
	// gets the primary format's own authentication error. Secrets as
	// ${ENV}. Empty: clients are not authenticated, which is allowed only
	// when proxy.listen is a loopback address (and then nothing is re-signed).
	Clients []Client `yaml:"clients"`
	// AllowedActions bounds what a verified client may have forwarded (and
	// re-signed): "all", or a list of action names (Rekognition: the
	// X-Amz-Target operation, e.g. DetectLabels, ListCollections;
	// Tencent: the X-TC-Action; other formats: the request path, e.g.
	// /v1/images:annotate). Default: the format's classification action
	// only. Other actions get the format's AccessDeniedException.
	AllowedActions Actions `yaml:"allowed_actions"`
	// UpstreamCAFile adds PEM CA certificates to trust when talking to the
	// primary over TLS (a private CA). System roots are always trusted.
	UpstreamCAFile string `yaml:"upstream_ca_file"`
	// Forward enables forward-proxy mode (HTTPS_PROXY).
	Forward ForwardProxy `yaml:"forward"`
	// Mirror bounds and samples the shadow traffic.
	Mirror Mirror `yaml:"mirror"`
	// ShutdownTimeout bounds the wait for in-flight requests and mirrors on
	// SIGTERM. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// RunDir is where recordings go; --run-dir overrides it. Default
	// out/runs/<start time>-<mode>.
	RunDir string `yaml:"run_dir"`
	// Fleet makes several proxy replicas act as one through a NATS
	// JetStream key-value bucket: the canary state, the rollback and step
	// gates (judged by one replica at a time on the fleet's pooled
	// window), the daily spend cap and, with mirror.dedupe_scope: fleet,
	// dedupe. Unset: one process, with canary.state_file.
	Fleet *Fleet `yaml:"fleet"`
}

// Fleet configures proxy.fleet.
type Fleet struct {
	// NATSURL is the NATS server with JetStream, e.g. nats://127.0.0.1:4222. Required.
	NATSURL string `yaml:"nats_url"`
	// Bucket is the key-value bucket the replicas share (dedupe uses
	// Bucket-dedupe). Default cutover-fleet. One bucket per rollout.
	Bucket string `yaml:"bucket"`
	// Name identifies this replica. Default: the host name and the port
	// of proxy.listen, e.g. web-3:8080.
	Name string `yaml:"name"`
	// CredsFile is a NATS credentials file (a user JWT and its NKey seed)
	// for servers that require them. User and password can also be given
	// in nats_url; tls:// in nats_url uses TLS. Optional.
	CredsFile string `yaml:"creds_file"`
	// Replicas is the number of JetStream replicas of the buckets when this
	// replica creates them (1–5; use 3 on a NATS cluster). Buckets that
	// exist are used as they are. Default 1.
	Replicas int `yaml:"replicas"`
}

// ForwardProxy configures forward mode: TLS interception of the legacy
// host(s) only, with a CA made by `cutover proxy ca init`.
type ForwardProxy struct {
	// Enabled accepts proxy requests (CONNECT and absolute URLs). Default false.
	Enabled bool `yaml:"enabled"`
	// CACert and CAKey are the PEM files of the interception CA. Required
	// when enabled. The built-in goproxy CA is never used.
	CACert string `yaml:"ca_cert"`
	CAKey  string `yaml:"ca_key"`
	// Intercept lists host:port to intercept; every other host is
	// tunnelled untouched. Default: the primary's base_url host.
	Intercept []string `yaml:"intercept"`
	// Tunnel lists the other hosts that may be reached through the proxy
	// untouched (CONNECT tunnels and absolute http URLs), as host:port
	// patterns: "*" matches one host label ("*.s3.amazonaws.com:443") or
	// any port ("cdn.example.com:*"). Default: none. Any other destination
	// gets 403 with the reason. A destination that resolves to a loopback
	// or link-local address, or to one of the proxy's own listeners, is
	// refused unless listed here by its exact host:port.
	Tunnel []string `yaml:"tunnel"`
	// Auth, when set, requires Proxy-Authorization: Basic with these
	// credentials (${ENV}) on every forward-mode request and CONNECT.
	Auth *BasicAuth `yaml:"auth"`
}

// BasicAuth is a user name and password for HTTP Basic authentication.
type BasicAuth struct {
	// Username, required.
	Username Secret `yaml:"username"`
	// Password, required; from the environment with ${VAR}.
	Password Secret `yaml:"password"`
}

// Client is one identity allowed to use the proxy (proxy.clients).
type Client struct {
	// Name identifies the caller in observations (client) and logs. Required, unique.
	Name string `yaml:"name"`
	// AccessKeyID and SecretAccessKey are the client's key pair, for
	// signature formats (rekognition: SigV4; tencent: SecretId and SecretKey).
	AccessKeyID     Secret `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// APIKey is the client's key, for key and bearer formats (gcv, azure,
	// openai, holysheep; baidu: the access_token it presents).
	APIKey Secret `yaml:"api_key"`
}

// Actions is a list of action names, or all of them ("all").
type Actions struct {
	All   bool
	Names []string
}

// UnmarshalYAML accepts "all" or a list of names.
func (a *Actions) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "all" {
			return fmt.Errorf("line %d: expected \"all\" or a list of action names, got %q", n.Line, n.Value)
		}
		a.All = true
		return nil
	}
	if err := n.Decode(&a.Names); err != nil {
		return fmt.Errorf("line %d: expected \"all\" or a list of action names", n.Line)
	}
	for _, v := range a.Names {
		if v == "all" {
			a.All = true
		}
	}
	return nil
}

// MarshalYAML writes "all" or the list.
func (a Actions) MarshalYAML() (any, error) {
	if a.All {
		return "all", nil
	}
	return a.Names, nil
}

// Allows reports whether action is allowed; classify says whether it is
// the format's classification action (allowed by default).
func (a Actions) Allows(action string, classify bool) bool {
	if a.All || (len(a.Names) == 0 && classify) {
		return true
	}
	for _, v := range a.Names {
		if v == action {
			return true
		}
	}
	return false
}

// Mirror bounds the copy of traffic sent to the candidate.
type Mirror struct {
	// MaxBodyBytes is the largest request body read for mirroring; a larger
	// one goes to the primary in full and is not mirrored. Default 8 MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxInFlight caps concurrent candidate calls; beyond it a mirror is
	// dropped and counted, never waited for. Default 256.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxQueueBytes caps the memory held by in-flight mirrors, counted as
	// four times each request body (the body, the decoded image and the
	// candidate's encoded request). Default 64 MiB.
	MaxQueueBytes ByteSize `yaml:"max_queue_bytes"`
	// SamplePercent of classification calls mirrored, 0–100. Default 100.
	SamplePercent *float64 `yaml:"sample_percent"`
	// SampleBy is image (an image is always or never mirrored) or request.
	// Default image.
	SampleBy string `yaml:"sample_by"`
	// DedupeWindow skips an image already mirrored within it. 0 = off.
	DedupeWindow Duration `yaml:"dedupe_window"`
	// DedupeScope is local (each replica remembers the images it
	// mirrored) or fleet (an image mirrored by any replica of proxy.fleet
	// within dedupe_window is not mirrored again). Default local.
	DedupeScope string `yaml:"dedupe_scope"`
	// MaxDailySpend pauses mirroring when the day's projected candidate
	// spend reaches it, in the candidate's pricing currency; with
	// proxy.fleet it caps the whole fleet's spend. 0 = no limit.
	MaxDailySpend float64 `yaml:"max_daily_spend"`
	// Timeout bounds one candidate call. Default: the candidate's timeout.
	Timeout Duration `yaml:"timeout"`
}

// Record configures run directories.
type Record struct {
	// StoreImages keeps each distinct image (content-addressed) for replay.
	// Default false.
	StoreImages bool `yaml:"store_images"`
	// RotateBytes starts a new observations file past this size; files
	// also rotate every hour. Default 128 MiB.
	RotateBytes ByteSize `yaml:"rotate_bytes"`
	// Compress writes observations-*.jsonl.gz. Default false.
	Compress bool `yaml:"compress"`
	// HlogInterval is the HDR interval-log period. Default 10s.
	HlogInterval Duration `yaml:"hlog_interval"`
}

// ByteSize is a size in bytes written as 8MiB, 64MB, 512KiB or a number.
type ByteSize int64

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			var v float64
			if _, err := fmt.Sscanf(strings.TrimSpace(n), "%g", &v); err != nil || v < 0 {
				return 0, fmt.Errorf("bad size")
			}
			return int64(v * float64(u.mult)), nil
		}
	}
	var v int64
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v < 0 || fmt.Sprint(v) != s {
		return 0, fmt.Errorf("bad size")
	}
	return v, nil
}

func (c *Config) setProxyDefaults() {
	p := &c.Proxy
	if p.Listen == "" {
		p.Listen = "127.0.0.1:8080"
	}
	if p.AdminListen == "" {
		p.AdminListen = "127.0.0.1:9091"
	}
	if p.Mode == "" {
		p.Mode = "shadow"
	}
	if p.Resign == nil {
		t := true
		p.Resign = &t
	}
	m := &p.Mirror
	if m.MaxBodyBytes == 0 {
		m.MaxBodyBytes = 8 << 20
	}
	if m.MaxInFlight == 0 {
		m.MaxInFlight = 256
	}
	if m.MaxQueueBytes == 0 {
		m.MaxQueueBytes = 64 << 20
	}
	if m.SamplePercent == nil {
		h := 100.0
		m.SamplePercent = &h
	}
	if m.SampleBy == "" {
		m.SampleBy = "image"
	}
	if m.DedupeScope == "" {
		m.DedupeScope = "local"
	}
	if f := p.Fleet; f != nil {
		if f.Bucket == "" {
			f.Bucket = "cutover-fleet"
		}
		if f.Replicas == 0 {
			f.Replicas = 1
		}
		if f.Name == "" {
			host, _ := os.Hostname()
			_, port, _ := net.SplitHostPort(p.Listen.String())
			f.Name = host + ":" + port
		}
	}
	if p.ShutdownTimeout == 0 {
		p.ShutdownTimeout = Duration(30 * time.Second)
	}
	c.setCanaryDefaults()
	r := &c.Record
	if r.RotateBytes == 0 {
		r.RotateBytes = 128 << 20
	}
	if r.HlogInterval == 0 {
		r.HlogInterval = Duration(10 * time.Second)
	}
}

func (v *validator) proxy() {
	p := &v.c.Proxy
	if !v.has("proxy") {
		return // no proxy section: only `cutover proxy` needs one
	}
	for _, role := range []struct{ key, name string }{{"primary", p.Primary}, {"candidate", p.Candidate}} {
		path := "proxy." + role.key
		switch {
		case role.name == "":
			v.errf("proxy", "proxy.%s is required: a provider name under providers:", role.key)
		case v.c.Providers[role.name] == nil:
			v.errf(path, "proxy.%s: no provider %q under providers:", role.key, role.name)
		}
	}
	if p.Primary != "" && p.Primary == p.Candidate {
		v.errf("proxy.candidate", "proxy.candidate must differ from proxy.primary")
	}
	if p.Mode != ModeShadow && p.Mode != ModeCanary && p.Mode != ModeCutover {
		v.errf("proxy.mode", "proxy.mode %q: expected shadow, canary or cutover", p.Mode)
	}
	v.canary()
	if p.Listen == p.AdminListen {
		v.errf("proxy.admin_listen", "proxy.admin_listen must differ from proxy.listen")
	}
	v.clients()
	for i, h := range p.Forward.Tunnel {
		if !validHostPattern(h) {
			v.errf(fmt.Sprintf("proxy.forward.tunnel[%d]", i), "tunnel %q: expected host:port, with * for one host label or any port (e.g. *.s3.amazonaws.com:443)", h)
		}
	}
	if a := p.Forward.Auth; a != nil && (a.Username == "" || a.Password == "") {
		v.errf("proxy.forward.auth", "proxy.forward.auth needs username and password (the password from the environment: ${VAR})")
	}
	if p.Forward.Enabled && (p.Forward.CACert == "" || p.Forward.CAKey == "") {
		v.errf("proxy.forward", "proxy.forward needs ca_cert and ca_key (make them with 'cutover proxy ca init --out DIR')")
	}
	for i, h := range p.Forward.Intercept {
		if !strings.Contains(h, ":") {
			v.errf(fmt.Sprintf("proxy.forward.intercept[%d]", i), "intercept %q: expected host:port such as rekognition.ap-southeast-1.amazonaws.com:443", h)
		}
	}
	m := &p.Mirror
	if *m.SamplePercent < 0 || *m.SamplePercent > 100 {
		v.errf("proxy.mirror.sample_percent", "sample_percent %v: expected 0–100", *m.SamplePercent)
	}
	if m.SampleBy != "image" && m.SampleBy != "request" {
		v.errf("proxy.mirror.sample_by", "sample_by %q: expected image or request", m.SampleBy)
	}
	if m.MaxInFlight < 1 || m.MaxInFlight > 100000 {
		v.errf("proxy.mirror.max_in_flight", "max_in_flight %d: expected 1–100000", m.MaxInFlight)
	}
	if m.DedupeScope != "local" && m.DedupeScope != "fleet" {
		v.errf("proxy.mirror.dedupe_scope", "dedupe_scope %q: expected local or fleet", m.DedupeScope)
	} else if m.DedupeScope == "fleet" && p.Fleet == nil {
		v.errf("proxy.mirror.dedupe_scope", "dedupe_scope fleet needs proxy.fleet")
	}
	if f := p.Fleet; f != nil {
		if f.NATSURL == "" {
			v.errf("proxy.fleet", "proxy.fleet.nats_url is required, e.g. nats://127.0.0.1:4222")
		} else if u, err := url.Parse(f.NATSURL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			v.errf("proxy.fleet.nats_url", "nats_url %q: expected nats://host:port", f.NATSURL)
		}
		if !validBucket(f.Bucket) {
			v.errf("proxy.fleet.bucket", "bucket %q: letters, digits, - and _ only", f.Bucket)
		}
		if f.Replicas < 1 || f.Replicas > 5 {
			v.errf("proxy.fleet.replicas", "replicas %d: expected 1–5", f.Replicas)
		}
	}
	if m.MaxDailySpend < 0 {
		v.errf("proxy.mirror.max_daily_spend", "max_daily_spend must be ≥ 0 (0 = no limit)")
	}
}

// clients checks proxy.clients: names present and unique, each with the
// credentials the primary's format verifies.
func (v *validator) clients() {
	p := &v.c.Proxy
	prim := v.c.Providers[p.Primary]
	seen := map[string]bool{}
	for i, c := range p.Clients {
		path := fmt.Sprintf("proxy.clients[%d]", i)
		switch {
		case c.Name == "":
			v.errf(path, "proxy.clients[%d].name is required (it names the caller in observations)", i)
		case seen[c.Name]:
			v.errf(path+".name", "client name %q is used twice", c.Name)
		}
		seen[c.Name] = true
		if prim == nil || len(v.c.Unset(path)) > 0 {
			// A ${VAR} not set here is for the commands that use the
			// clients to require (cutover proxy), not an invalid config.
			continue
		}
		if prim.Format.Signs() {
			if c.AccessKeyID == "" || c.SecretAccessKey == "" {
				v.errf(path, "client %q: the primary's format %s signs requests: set access_key_id and secret_access_key (${VAR})", c.Name, prim.Format)
			}
		} else if c.APIKey == "" {
			v.errf(path, "client %q: the primary's format %s sends a key: set api_key (${VAR})", c.Name, prim.Format)
		}
	}
	for i, a := range p.AllowedActions.Names {
		if strings.TrimSpace(a) == "" {
			v.errf(fmt.Sprintf("proxy.allowed_actions[%d]", i), "an action name is empty")
		}
	}
}

func validBucket(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validHostPattern reports whether s is host:port with * allowed as one
// host label or as the port.
func validHostPattern(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return false
	}
	if port != "*" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	for _, l := range strings.Split(host, ".") {
		if l == "" || (strings.Contains(l, "*") && l != "*") {
			return false
		}
	}
	return true
}

// PrimaryHostPort returns the primary's base URL as host:port.
func (c *Config) PrimaryHostPort() string {
	p := c.Providers[c.Proxy.Primary]
	if p == nil {
		return ""
	}
	u, err := url.Parse(p.BaseURL.String())
	if err != nil {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}
