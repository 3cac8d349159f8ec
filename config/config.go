// Package config is the typed schema of cutover's config.yaml: loading,
// ${ENV} expansion for secrets, and validation that reports every problem
// with the file and line it is on.
//
// Every field's doc comment is user documentation: what it means, its unit,
// its default and its bounds. README.md's config reference follows it.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole of config.yaml.
type Config struct {
	// Taxonomy is the path of the canonical taxonomy file, relative to the
	// config file. Default taxonomy.yaml.
	Taxonomy string `yaml:"taxonomy"`
	// Fixtures is the directory of the labelled fixture set (manifest.jsonl
	// and images), relative to the config file. Default out/fixtures.
	Fixtures string `yaml:"fixtures"`
	// FX maps a currency code to its value in USD (CNY: 0.14 means ¥1 = $0.14).
	// USD is always 1.
	FX map[string]float64 `yaml:"fx"`
	// Providers are the vision APIs cutover talks to, by name.
	Providers map[string]*Provider `yaml:"providers"`
	// Prompts are versioned prompts and response schemas for vision-LLM
	// (openai format) providers, by name. "default" is built in (a prompt
	// tuned for fashion catalogues) unless the file defines its own.
	Prompts map[string]*Prompt `yaml:"prompts"`
	// Models are token prices per model for vision-LLM providers.
	Models map[string]*ModelPrice `yaml:"models"`
	// Simulate are the simulated providers `cutover simulate` serves, by name.
	Simulate map[string]*Simulator `yaml:"simulate"`
	// Proxy configures `cutover proxy`.
	Proxy Proxy `yaml:"proxy"`
	// Record configures run directories (proxy and bench).
	Record Record `yaml:"record"`
	// Report configures `cutover report`: which providers to compare, the
	// time zone of hour-of-day tables, the volume costs are projected at.
	Report Report `yaml:"report"`
	// Gates are the go/no-go criteria the report judges the candidate by.
	Gates Gates `yaml:"gates"`
	// Pipeline configures `cutover pipeline`: the post-cutover tagging
	// service and backfills.
	Pipeline Pipeline `yaml:"pipeline"`

	// File is the path the config was loaded from; Dir its directory.
	File string `yaml:"-"`
	Dir  string `yaml:"-"`

	lines map[string]int
	unset []UnsetEnv
}

// Provider is one vision API endpoint.
type Provider struct {
	// Format is the wire format: rekognition, gcv, azure, holysheep, openai,
	// tencent or baidu. Required.
	Format Format `yaml:"format"`
	// BaseURL is the API's base URL, e.g. https://rekognition.ap-southeast-1.amazonaws.com
	// or https://api.holysheep.ai. Required.
	BaseURL URL `yaml:"base_url"`
	// Region is the AWS region for SigV4 (rekognition; default us-east-1)
	// or the Tencent Cloud region sent as X-TC-Region (tencent; default
	// ap-guangzhou).
	Region string `yaml:"region"`
	// Action is the TIIA action a tencent provider calls: DetectLabelPro
	// (general image tags, the default) or DetectProduct (product
	// categories). tencent only.
	Action string `yaml:"action"`
	// Model is the model the request names (holysheep: vision-classifier-v3;
	// openai: e.g. gemini-2.5-flash, with its prices under models:).
	Model string `yaml:"model"`
	// Prompt names the prompt under prompts: (openai format). Default "default".
	Prompt string `yaml:"prompt"`
	// Credentials are taken from the environment with ${VAR}; never write keys here.
	Credentials Credentials `yaml:"credentials"`
	// Timeout bounds one call, connection to last byte. Default 10s, 1ms–10m.
	Timeout Duration `yaml:"timeout"`
	// MaxRPS caps the request rate cutover sends to this provider (0 = no cap).
	MaxRPS float64 `yaml:"max_rps"`
	// Pricing is the price per 1,000 calls.
	Pricing Pricing `yaml:"pricing"`
}

// Credentials holds a provider's secrets. Which fields apply depends on the
// format: api_key for holysheep and openai (Bearer), gcv (x-goog-api-key)
// and azure (Ocp-Apim-Subscription-Key); the access key pair for
// rekognition (SigV4); secret_id and secret_key for tencent (TC3-HMAC-SHA256);
// api_key (Baidu's "API Key", the OAuth client_id) and secret_key (its
// "Secret Key", the client_secret) for baidu.
type Credentials struct {
	// APIKey is the key of key and bearer formats (gcv, azure, openai,
	// holysheep), or Baidu's API Key (its OAuth client_id).
	APIKey Secret `yaml:"api_key"`
	// AccessKeyID and SecretAccessKey are the key pair of signature formats (rekognition: SigV4).
	AccessKeyID     Secret `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// SessionToken is an AWS session token for temporary credentials (rekognition). Optional.
	SessionToken Secret `yaml:"session_token"`
	// SecretID is a Tencent Cloud SecretId (AKID…). tencent only.
	SecretID Secret `yaml:"secret_id"`
	// SecretKey is a Tencent Cloud SecretKey (tencent) or a Baidu Secret
	// Key (baidu).
	SecretKey Secret `yaml:"secret_key"`
}

// Secrets returns every non-empty secret value, for scrubbing.
func (c Credentials) Secrets() []string {
	var out []string
	for _, s := range []Secret{c.APIKey, c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.SecretID, c.SecretKey} {
		if s != "" {
			out = append(out, s.Value())
		}
	}
	return out
}

// Pricing is a tiered price per 1,000 calls in one currency.
type Pricing struct {
	// Currency is an ISO code (USD, CNY); non-USD needs an fx rate. Default USD.
	Currency string `yaml:"currency"`
	// Tiers are monthly volume bands, in order; the last has no up_to.
	Tiers []Tier `yaml:"tiers"`
}

// Tier is one band of a tiered price.
type Tier struct {
	// UpTo is the cumulative monthly call count where this band ends (0 = no end).
	UpTo int64 `yaml:"up_to"`
	// Per1000 is the price of 1,000 calls within this band, in the pricing currency.
	Per1000 float64 `yaml:"per_1000"`
}

// Simulator is one simulated provider served by `cutover simulate`.
type Simulator struct {
	// Format is the wire format it speaks. Required.
	Format Format `yaml:"format"`
	// Listen is the loopback address it serves on, e.g. 127.0.0.1:9101. Required.
	Listen Addr `yaml:"listen"`
	// Credentials, when set, are checked on every request (401/403 otherwise);
	// for rekognition the SigV4 signature is verified with the key pair.
	Credentials Credentials `yaml:"credentials"`
	// Profile is the behaviour: latency, errors, throttling, accuracy.
	Profile Profile `yaml:"profile"`
}

// Profile describes how a simulated provider behaves.
type Profile struct {
	// ModelVersion is reported in answers. Default "sim-1".
	ModelVersion string `yaml:"model_version"`
	// Latency off-peak: a log-normal fitted to median (or mean) and p99.
	Latency Latency `yaml:"latency"`
	// Peak is a daily window with its own latency, in a time zone.
	Peak *Peak `yaml:"peak"`
	// ClockStart sets the simulated wall clock at start-up (RFC 3339) so that
	// peak hours can be reproduced on demand; it then advances in real time.
	// Default: the real clock.
	ClockStart *Timestamp `yaml:"clock_start"`
	// Errors maps a typed error code (throttled, timeout, server_error,
	// network, invalid_response, bad_image, unauthorized, bad_request,
	// too_large) to the share of requests that fail with it, 0–1.
	Errors map[string]Rate `yaml:"errors"`
	// ThrottleRPS is the sustained rate above which requests are throttled
	// (token bucket, burst ThrottleBurst) with the format's own throttling
	// error. 0 = never.
	ThrottleRPS float64 `yaml:"throttle_rps"`
	// ThrottleBurst is the token bucket's size. Default max(1, throttle_rps).
	ThrottleBurst int `yaml:"throttle_burst"`
	// Accuracy is the confusion model.
	Accuracy Accuracy `yaml:"accuracy"`
	// LLM shapes a vision-LLM simulator (openai format): latency is then the
	// time to first token, and these add generation time and failure modes.
	LLM LLMProfile `yaml:"llm"`
}

// LLMProfile is a simulated vision LLM's generation speed and failure modes.
type LLMProfile struct {
	// PerOutputToken is the generation time of one output token. Default 0.
	PerOutputToken Duration `yaml:"per_output_token"`
	// Shares of answers, 0–1: content that is not JSON, JSON that breaks
	// the schema, a refusal, and a truncation (finish_reason length).
	InvalidJSON     Rate `yaml:"invalid_json"`
	SchemaViolation Rate `yaml:"schema_violation"`
	Refusal         Rate `yaml:"refusal"`
	Truncation      Rate `yaml:"truncation"`
}

// Prompt is a versioned prompt and response schema. Its version is recorded
// with every observation, so two prompts can be benchmarked like two providers.
type Prompt struct {
	// Version identifies this prompt and schema, e.g. fashion-v1. Required.
	Version string `yaml:"version"`
	// System is the system message.
	System string `yaml:"system"`
	// User is the text part of the user message (the image follows it).
	User string `yaml:"user"`
	// Detail is the image_url detail: low, high or auto. Default low.
	Detail string `yaml:"detail"`
	// MaxCompletionTokens caps the answer. Default 300, 16–8192.
	MaxCompletionTokens int `yaml:"max_completion_tokens"`
	// Temperature, 0–2. Default 0.
	Temperature *float64 `yaml:"temperature"`
	// Seed asks for reproducible sampling where the model supports it.
	Seed *int64 `yaml:"seed"`
	// Logprobs derives category confidence from token log-probabilities
	// instead of the model's own report. Default false.
	Logprobs bool `yaml:"logprobs"`
	// Schema shapes the json_schema response format.
	Schema PromptSchema `yaml:"schema"`
}

// PromptSchema shapes the strict JSON schema generated from the taxonomy.
type PromptSchema struct {
	// Name of the json_schema. Default product_tags.
	Name string `yaml:"name"`
	// MaxCategories the model may return, most confident first. Default 3.
	MaxCategories int `yaml:"max_categories"`
	// Attributes asked for: color, pattern, material, style. Default all.
	Attributes []string `yaml:"attributes"`
}

// ModelPrice is one model's token prices.
type ModelPrice struct {
	// Currency of the prices. Default USD.
	Currency string `yaml:"currency"`
	// Prices per million tokens: input, cached input, output.
	InputPerMillion       float64 `yaml:"input_per_million"`
	CachedInputPerMillion float64 `yaml:"cached_input_per_million"`
	OutputPerMillion      float64 `yaml:"output_per_million"`
	// ImageTokens names the rule that estimates an image's input tokens
	// before a call: gpt-4o (85 at low detail, 85 + 170 per 512 px tile at
	// high), gpt-4.1-mini, gpt-4.1-nano (32 px patches), gemini (258 per
	// 768 px tile), claude (width·height/750), or fixed:N. Default: from the
	// model's name.
	ImageTokens string `yaml:"image_tokens"`
}

// Latency is a log-normal distribution given by two of its figures: the
// median (or the mean) and the 99th percentile.
type Latency struct {
	// Median of the log-normal; give it or mean.
	Median Duration `yaml:"median"`
	// Mean of the log-normal, instead of median.
	Mean Duration `yaml:"mean"`
	// P99 of the log-normal; must be above median (or mean). Required.
	P99 Duration `yaml:"p99"`
}

// Peak is a daily window of different latency.
type Peak struct {
	// Zone is the IANA time zone of Start and End. Default UTC.
	Zone Zone `yaml:"zone"`
	// Start and End bound the window, HH:MM local time, End exclusive.
	Start Clock `yaml:"start"`
	End   Clock `yaml:"end"`
	// Latency inside the window.
	Latency Latency `yaml:"latency"`
}

// Accuracy is a simulated provider's confusion model.
type Accuracy struct {
	// Misclassification maps a category group (fashion, accessories, …) to the
	// share of images whose top category is wrong, 0–1; "default" covers the
	// rest. Default 0.
	Misclassification map[string]Rate `yaml:"misclassification"`
	// SiblingShare is the share of wrong answers drawn from sibling
	// categories (same parent, e.g. shirts for tshirts); the rest come from
	// the same group. Default 0.8.
	SiblingShare *Rate `yaml:"sibling_share"`
	// AttributeErrors maps an attribute kind (color, pattern, material,
	// style) to the share of answers with a wrong value. Default 0.
	AttributeErrors map[string]Rate `yaml:"attribute_errors"`
}

// Load reads, expands and validates the config file at path. The error, if
// any, is an ErrorList with every problem found.
func Load(path string) (*Config, error) {
	c, err := LoadWithoutSecrets(path)
	if c == nil {
		return c, err
	}
	var list ErrorList
	if err != nil && !errors.As(err, &list) {
		return c, err
	}
	var unset ErrorList
	errors.As(c.RequireEnv(), &unset)
	if list = append(list, unset...); len(list) > 0 {
		list.sort()
		return c, list
	}
	return c, nil
}

// LoadWithoutSecrets is Load that leaves a credential whose ${VAR} is
// unset empty instead of failing: a command then asks for the variables
// it needs (RequireEnv), so that `cutover report` runs without API keys
// and `cutover classify --providers legacy` needs only the legacy's.
func LoadWithoutSecrets(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, b)
}

// UnsetEnv is a ${VAR} reference whose variable is not set.
type UnsetEnv struct {
	// Path is the key, e.g. providers.legacy.credentials.secret_access_key.
	Path string
	Line int
	Var  string
}

// Unset lists the ${VAR} references to unset variables under the given
// key prefixes (every one when none is given).
func (c *Config) Unset(prefixes ...string) []UnsetEnv {
	var out []UnsetEnv
	for _, u := range c.unset {
		if len(prefixes) == 0 {
			out = append(out, u)
			continue
		}
		for _, p := range prefixes {
			if u.Path == p || strings.HasPrefix(u.Path, p+".") || strings.HasPrefix(u.Path, p+"[") {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

// RequireEnv fails, with file:line and the variable for each, when a
// ${VAR} under the given key prefixes (every one when none is given)
// refers to an unset variable.
func (c *Config) RequireEnv(prefixes ...string) error {
	var errs ErrorList
	for _, u := range c.Unset(prefixes...) {
		errs = append(errs, Error{File: c.File, Line: u.Line,
			Msg: fmt.Sprintf("environment variable %s is not set (referenced as ${%s})", u.Var, u.Var)})
	}
	if len(errs) > 0 {
		errs.sort()
		return errs
	}
	return nil
}

// findUnset lists the ${VAR} references in secrets whose variables are
// unset. (A URL's reference is an error when it is decoded.)
func findUnset(n *yaml.Node, path string, out *[]UnsetEnv) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			findUnset(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			findUnset(item, fmt.Sprintf("%s[%d]", path, i), out)
		}
	case yaml.ScalarNode:
		for _, m := range envRef.FindAllStringSubmatch(n.Value, -1) {
			if _, ok := os.LookupEnv(m[1]); !ok && !strings.HasSuffix(path, "base_url") {
				*out = append(*out, UnsetEnv{Path: path, Line: n.Line, Var: m[1]})
			}
		}
	}
}

// Parse is Load for bytes already read; path is used in messages and to
// resolve relative paths.
func Parse(path string, b []byte) (*Config, error) {
	c := &Config{File: path, Dir: filepath.Dir(path)}
	var errs ErrorList
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, ErrorList{parseYAMLError(path, err)}
	}
	if len(root.Content) == 0 {
		return nil, ErrorList{{File: path, Line: 1, Msg: "config is empty"}}
	}
	c.lines = map[string]int{}
	indexLines(root.Content[0], "", c.lines)
	findUnset(root.Content[0], "", &c.unset)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, ErrorList{parseYAMLError(path, err)}
		}
		for _, msg := range te.Errors {
			errs = append(errs, typeErrorLine(path, msg))
		}
	}
	c.setDefaults()
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		errs.sort()
		return c, errs
	}
	return c, nil
}

// Error is one problem in a config file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrorList is every problem found in a config file, in line order.
type ErrorList []Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
}

var (
	lineRe    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRe = regexp.MustCompile(`^field (\S+) not found in type config\.(\w+)$`)
	cannotRe  = regexp.MustCompile(`^cannot unmarshal !!(\w+)(?: (.*))? into (.*)$`)
)

func parseYAMLError(path string, err error) Error {
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Error{File: path, Line: n, Msg: "invalid YAML: " + m[2]}
	}
	return Error{File: path, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

func typeErrorLine(path, msg string) Error {
	m := lineRe.FindStringSubmatch(msg)
	if m == nil {
		return Error{File: path, Msg: msg}
	}
	n, _ := strconv.Atoi(m[1])
	text := m[2]
	if u := unknownRe.FindStringSubmatch(text); u != nil {
		text = fmt.Sprintf("unknown key %q: expected one of %s", u[1], strings.Join(knownKeys(u[2]), ", "))
	} else if u := cannotRe.FindStringSubmatch(text); u != nil {
		text = fmt.Sprintf("expected %s, got %s", goTypeName(u[3]), yamlTag(u[1]))
		if u[2] != "" {
			text += " " + strings.ReplaceAll(u[2], "`", `"`)
		}
	}
	return Error{File: path, Line: n, Msg: text}
}

func yamlTag(t string) string {
	switch t {
	case "str":
		return "the string"
	case "int", "float":
		return "the number"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "bool":
		return "the boolean"
	}
	return t
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "float64" || t == "config.Rate":
		return "a number"
	case strings.HasPrefix(t, "int"):
		return "a whole number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "config.") || strings.HasPrefix(t, "*config."):
		return "a mapping"
	}
	return t
}

var structTypes = map[string]reflect.Type{}

func init() { registerTypes(reflect.TypeOf(Config{})) }

func registerTypes(t reflect.Type) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Map || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || structTypes[t.Name()] != nil || t.PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
		return
	}
	structTypes[t.Name()] = t
	for i := 0; i < t.NumField(); i++ {
		registerTypes(t.Field(i).Type)
	}
}

func knownKeys(typeName string) []string {
	t := structTypes[typeName]
	if t == nil {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// indexLines records the line of every mapping key and list item under its
// dotted path (providers.legacy.base_url, pricing.tiers[1]).
func indexLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			lines[p] = n.Content[i].Line
			indexLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = item.Line
			indexLines(item, p, lines)
		}
	}
}

// Line returns the line of a dotted path in the file, or of its nearest
// ancestor that has one.
func (c *Config) Line(path string) int {
	for p := path; p != ""; {
		if n, ok := c.lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// Path resolves a path from the config file relative to its directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// TaxonomyPath is the resolved taxonomy file path.
func (c *Config) TaxonomyPath() string { return c.Path(c.Taxonomy) }

// FixturesPath is the resolved fixture directory.
func (c *Config) FixturesPath() string { return c.Path(c.Fixtures) }

// PromptFor returns the prompt a provider uses.
func (c *Config) PromptFor(p *Provider) *Prompt {
	name := p.Prompt
	if name == "" {
		name = "default"
	}
	return c.Prompts[name]
}

// Secrets returns every secret value in the config, for scrubbing output.
func (c *Config) Secrets() []string {
	var out []string
	for _, p := range c.Providers {
		out = append(out, p.Credentials.Secrets()...)
	}
	for _, s := range c.Simulate {
		out = append(out, s.Credentials.Secrets()...)
	}
	for _, cl := range c.Proxy.Clients {
		for _, s := range []Secret{cl.AccessKeyID, cl.SecretAccessKey, cl.APIKey} {
			if s != "" {
				out = append(out, s.Value())
			}
		}
	}
	if a := c.Proxy.Forward.Auth; a != nil && a.Password != "" {
		out = append(out, a.Password.Value())
	}
	return out
}

// Digest is a SHA-256 of the config with every secret redacted: it changes
// when any setting changes and reveals no credential.
func (c *Config) Digest() string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
