package baidu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/vision"
)

// DefaultTokenTTL is an access token's life: 30 days, as Baidu issues them.
const DefaultTokenTTL = 30 * 24 * time.Hour

// Tokens is the server side of Baidu's OAuth client-credentials flow: it
// issues access tokens at TokenPath (ServeHTTP) and checks the one a call
// carries (Check). Tokens are stateless: each is signed with a key drawn
// at start (or by Revoke), so memory does not grow with requests.
// With no APIKey, any client is given a token and Check accepts any
// call. Safe for concurrent use.
type Tokens struct {
	// APIKey and SecretKey are the one app's credentials.
	APIKey, SecretKey string
	// TTL is a token's life; 0 means DefaultTokenTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu  sync.Mutex
	key []byte
	n   uint64
}

// IsTokenRequest reports whether r is a call of the token endpoint.
func IsTokenRequest(r *http.Request) bool { return r.URL.Path == TokenPath }

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Tokens) ttl() time.Duration {
	if t.TTL > 0 {
		return t.TTL
	}
	return DefaultTokenTTL
}

// signingKey returns the current key, drawing one the first time.
func (t *Tokens) signingKey() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.key == nil {
		t.key = make([]byte, 32)
		rand.Read(t.key)
	}
	return t.key
}

// Revoke invalidates every token issued so far (Check answers 110).
func (t *Tokens) Revoke() {
	t.mu.Lock()
	t.key = make([]byte, 32)
	rand.Read(t.key)
	t.mu.Unlock()
}

// mac signs a token's fields.
func (t *Tokens) mac(ttl, issued, n string) string {
	m := hmac.New(sha256.New, t.signingKey())
	fmt.Fprintf(m, "%s|%s|%s|%s", t.APIKey, ttl, issued, n)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// issue returns a new token shaped like Baidu's:
// 24.<mac>.<ttl seconds>.<issued unix>.<n>-<app id>.
func (t *Tokens) issue() (string, int64) {
	t.mu.Lock()
	t.n++
	n := strconv.FormatUint(t.n, 10)
	t.mu.Unlock()
	ttl := int64(t.ttl() / time.Second)
	ttlS, issued := strconv.FormatInt(ttl, 10), strconv.FormatInt(t.now().Unix(), 10)
	return fmt.Sprintf("24.%s.%s.%s.%s-10000001", t.mac(ttlS, issued, n), ttlS, issued, n), ttl
}

func tokenErr(n int, msg string) *vision.Error {
	return &vision.Error{Code: vision.CodeUnauthorized, VendorCode: strconv.Itoa(n), Message: msg}
}

// Check verifies the access_token in r's query: missing → 100 Invalid
// parameter, unknown or revoked → 110, expired → 111; each a *vision.Error
// with code unauthorized and the number as VendorCode.
func (t *Tokens) Check(r *http.Request) error {
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		return tokenErr(100, "Invalid parameter")
	}
	if t.APIKey == "" {
		return nil
	}
	f := strings.Split(tok, ".")
	if len(f) != 5 || f[0] != "24" {
		return tokenErr(110, "Access token invalid or no longer valid")
	}
	n, _, _ := strings.Cut(f[4], "-")
	if subtle.ConstantTimeCompare([]byte(t.mac(f[2], f[3], n)), []byte(f[1])) != 1 {
		return tokenErr(110, "Access token invalid or no longer valid")
	}
	ttl, err1 := strconv.ParseInt(f[2], 10, 64)
	issued, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return tokenErr(110, "Access token invalid or no longer valid")
	}
	if !t.now().Before(time.Unix(issued+ttl, 0)) {
		return tokenErr(111, "Access token expired")
	}
	return nil
}

// ServeHTTP answers the token endpoint (GET with a query, as Baidu's SDKs
// call it, or POST with a form): a Token, or an OAuth error with HTTP 401
// (unknown client id, wrong secret) or 400 (another grant type).
func (t *Tokens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if f, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range f {
				if q.Get(k) == "" {
					q[k] = v
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, code, desc string) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(Token{Error: code, ErrorDescription: desc})
	}
	switch {
	case q.Get("grant_type") != "client_credentials":
		fail(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported")
		return
	case t.APIKey != "" && subtle.ConstantTimeCompare([]byte(q.Get("client_id")), []byte(t.APIKey)) != 1:
		fail(http.StatusUnauthorized, "invalid_client", "unknown client id")
		return
	case t.APIKey != "" && subtle.ConstantTimeCompare([]byte(q.Get("client_secret")), []byte(t.SecretKey)) != 1:
		fail(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	tok, ttl := t.issue()
	var sk [16]byte
	rand.Read(sk[:])
	json.NewEncoder(w).Encode(Token{AccessToken: tok, ExpiresIn: ttl, RefreshToken: "25." + tok[3:],
		Scope: "public brain_all_scope vis-classify_dishes vis-classify_car brain_gif_antiporn", SessionKey: hex.EncodeToString(sk[:8]), SessionSecret: hex.EncodeToString(sk[8:])})
}
