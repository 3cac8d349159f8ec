package proxy

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/jonboulle/clockwork"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/rekognition"
	"github.com/cutover/cutover/vision/tencent"
)

// clientAuth authenticates reverse-mode clients (proxy.clients) before
// the proxy lends them the primary's credentials: the client's own
// credentials are verified in the primary format's terms, the action is
// checked against proxy.allowed_actions, and only then is the request
// re-signed (or re-keyed) with the primary's credentials. A request that
// fails never reaches the primary or the candidate: it gets the primary
// format's own error.
type clientAuth struct {
	format  config.Format
	server  vision.ServerCodec
	actions config.Actions
	clock   clockwork.Clock
	secrets map[string]string // signature formats: access key id → secret
	names   map[string]string // access key id, or api key → client name
	keys    []string          // key formats: every client's api key
	// primaryKey is what replaces a key format's client key when the
	// request is forwarded (the primary's own credential).
	primaryKey string
}

func newClientAuth(cfg *config.Config, server vision.ServerCodec, clock clockwork.Clock) *clientAuth {
	pc := cfg.Proxy
	prim := cfg.Providers[pc.Primary]
	a := &clientAuth{format: prim.Format, server: server, actions: pc.AllowedActions, clock: clock,
		secrets: map[string]string{}, names: map[string]string{}, primaryKey: prim.Credentials.APIKey.Value()}
	for _, c := range pc.Clients {
		if prim.Format.Signs() {
			a.secrets[c.AccessKeyID.Value()] = c.SecretAccessKey.Value()
			a.names[c.AccessKeyID.Value()] = c.Name
		} else {
			a.keys = append(a.keys, c.APIKey.Value())
			a.names[c.APIKey.Value()] = c.Name
		}
	}
	return a
}

// denial is a refused request: the format's error and the reason counted
// on /metrics (cutover_client_auth_failures_total).
type denial struct {
	err    *vision.Error
	reason string
}

// verify authenticates r (body is the whole request body) and checks its
// action; it returns the client's name, and for SigV4 the body's payload
// hash, which re-signing the same body reuses.
func (a *clientAuth) verify(r *http.Request, body []byte, classify bool) (name, payloadHash string, d *denial) {
	var id string
	if a.format.Signs() {
		var err error
		switch a.format {
		case config.FormatRekognition:
			id, payloadHash, err = rekognition.VerifyClientHash(r, body, a.secret, a.clock.Now())
		case config.FormatTencent:
			id, err = tencent.VerifyTC3(r, body, a.secret, a.clock.Now())
		default:
			err = &vision.Error{Code: vision.CodeUnauthorized, Message: fmt.Sprintf("client verification is not available for format %s", a.format)}
		}
		if err != nil {
			e := vision.AsError(err)
			return "", "", &denial{err: e, reason: authReason(e)}
		}
	} else {
		key := clientKey(a.format, r)
		if key == "" {
			return "", "", &denial{err: a.keyError("no credentials: this proxy needs the client's own key"), reason: "missing"}
		}
		for _, k := range a.keys {
			if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
				id = k
			}
		}
		if id == "" {
			return "", "", &denial{err: a.keyError("the key is not a client's of this proxy"), reason: "unknown_client"}
		}
	}
	if action := a.action(r); !a.actions.Allows(action, classify) {
		e := &vision.Error{Code: vision.CodeUnauthorized, Status: http.StatusForbidden,
			Message: fmt.Sprintf("the action %s is not among proxy.allowed_actions", action)}
		if a.format == config.FormatRekognition {
			e.VendorCode = "AccessDeniedException"
			e.Message = fmt.Sprintf("User is not authorized to perform: rekognition:%s", action)
		}
		return "", "", &denial{err: e, reason: "action_denied"}
	}
	return a.names[id], payloadHash, nil
}

// keyError is a key format's refusal: 401, or Baidu's 110 (an access
// token that is not valid), as each vendor answers a bad key.
func (a *clientAuth) keyError(msg string) *vision.Error {
	e := &vision.Error{Code: vision.CodeUnauthorized, Status: http.StatusUnauthorized, Message: msg}
	if a.format == config.FormatBaidu {
		e.VendorCode, e.Message = "110", "Access token invalid or no longer valid"
	}
	return e
}

func (a *clientAuth) secret(id string) (string, bool) {
	s, ok := a.secrets[id]
	return s, ok
}

// action names what r asks for: the operation of a JSON-RPC style API
// (Rekognition's X-Amz-Target, Tencent's X-TC-Action), the path otherwise.
func (a *clientAuth) action(r *http.Request) string {
	switch {
	case a.format == config.FormatRekognition:
		t := r.Header.Get("X-Amz-Target")
		if _, op, ok := strings.Cut(t, "."); ok {
			return op
		}
		return t
	case r.Header.Get("X-TC-Action") != "":
		return r.Header.Get("X-TC-Action")
	}
	return r.URL.Path
}

// authReason is the metric label of a failed verification, from the
// format's own error name.
func authReason(e *vision.Error) string {
	switch v := e.VendorCode; {
	case v == "MissingAuthenticationTokenException" || (v == "AuthFailure.InvalidAuthorization" && strings.Contains(e.Message, "missing")):
		return "missing"
	case v == "UnrecognizedClientException" || v == "AuthFailure.SecretIdNotFound":
		return "unknown_client"
	case strings.Contains(e.Message, "expired") || v == "AuthFailure.SignatureExpire":
		return "expired"
	case v == "IncompleteSignatureException" || v == "AuthFailure.InvalidAuthorization":
		return "malformed"
	}
	return "bad_signature"
}

// clientKey is the key a key or bearer format's request carries.
func clientKey(f config.Format, r *http.Request) string {
	bearer := func() string {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			return strings.TrimSpace(v)
		}
		return ""
	}
	switch f {
	case config.FormatGCV:
		if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
			return k
		}
		if k := r.URL.Query().Get("key"); k != "" {
			return k
		}
		return bearer()
	case config.FormatAzure:
		if k := r.Header.Get("Ocp-Apim-Subscription-Key"); k != "" {
			return k
		}
		return r.URL.Query().Get("subscription-key")
	case config.FormatBaidu:
		return r.URL.Query().Get("access_token")
	}
	return bearer()
}

// rekey replaces a key format's client key with the primary's own on a
// request about to be forwarded (formats whose codec signs, or puts a
// token in the URL, are lent credentials by their Signer instead).
func (a *clientAuth) rekey(out *http.Request) {
	switch a.format {
	case config.FormatGCV:
		q := out.URL.Query()
		if q.Has("key") {
			q.Del("key")
			out.URL.RawQuery = q.Encode()
		}
		out.Header.Del("Authorization")
		out.Header.Set("X-Goog-Api-Key", a.primaryKey)
	case config.FormatAzure:
		q := out.URL.Query()
		if q.Has("subscription-key") {
			q.Del("subscription-key")
			out.URL.RawQuery = q.Encode()
		}
		out.Header.Set("Ocp-Apim-Subscription-Key", a.primaryKey)
	case config.FormatOpenAI, config.FormatHolySheep:
		out.Header.Set("Authorization", "Bearer "+a.primaryKey)
	}
}
