// Package secret keeps credentials out of text that leaves the process:
// log lines, error messages, recorded observations, database rows, HTTP
// answers. A Scrubber replaces every known secret (and its URL-escaped
// forms) with [redacted], and also the values of query parameters that
// carry credentials by convention (key, api_key, access_token,
// X-Amz-Signature, …), so a URL quoted in a transport error reveals
// nothing even when the secret was not configured.
//
// It is not an encryption or storage facility: secrets are held in memory
// as given.
package secret

import (
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces a secret.
const Redacted = "[redacted]"

// Scrubber removes secrets from text. The zero value and nil scrub only
// the conventional credential query parameters.
type Scrubber struct {
	r *strings.Replacer
}

// credentialParams matches the value of a query parameter that carries a
// credential by convention, in a URL or a form body.
var credentialParams = regexp.MustCompile(`(?i)([?&;](?:key|api[_-]?key|access[_-]?token|client[_-]?secret|token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s"';]+`)

// minLength is the shortest secret scrubbed by value: replacing every
// "k" or "ab" would garble every message, and a key that short protects
// nothing anyway.
const minLength = 6

// New returns a scrubber for secrets; strings shorter than six
// characters are ignored.
func New(secrets ...string) *Scrubber {
	var pairs []string
	seen := map[string]bool{}
	add := func(s string) {
		if len(s) < minLength || seen[s] {
			return
		}
		seen[s] = true
		pairs = append(pairs, s, Redacted)
	}
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
	}
	if len(pairs) == 0 {
		return &Scrubber{}
	}
	return &Scrubber{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret replaced.
func (s *Scrubber) String(in string) string {
	if s != nil && s.r != nil {
		in = s.r.Replace(in)
	}
	if strings.ContainsAny(in, "?&;") {
		in = credentialParams.ReplaceAllString(in, "${1}"+Redacted)
	}
	return in
}

// Error returns err's message scrubbed ("" for nil).
func (s *Scrubber) Error(err error) string {
	if err == nil {
		return ""
	}
	return s.String(err.Error())
}

// Wrap returns an error whose message is err's, scrubbed; errors.Is and
// errors.As still see err. Nil stays nil.
func (s *Scrubber) Wrap(err error) error {
	if err == nil {
		return nil
	}
	msg := s.Error(err)
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
