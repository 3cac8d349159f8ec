package tencent

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/vision"
)

// TC3-HMAC-SHA256, Tencent Cloud's API 3.0 signature ("签名方法 v3"):
// the signing key is derived from the SecretKey, the date and the service;
// the signature covers the method, the query, the signed headers (at
// least content-type and host) and the SHA-256 of the body.

// Algorithm is the Authorization scheme.
const Algorithm = "TC3-HMAC-SHA256"

// MaxClockSkew is how far X-TC-Timestamp may be from the server's clock
// before the signature has expired (AuthFailure.SignatureExpire).
const MaxClockSkew = 5 * time.Minute

// unsignedPayload is X-TC-Content-SHA256's value when the body is not
// signed.
const unsignedPayload = "UNSIGNED-PAYLOAD"

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// signature computes the TC3 signature of a request whose canonical
// request is canonical, made at unix time ts for service.
func signature(secretKey, service string, ts int64, canonical string) (sig, scope string) {
	date := time.Unix(ts, 0).UTC().Format("2006-01-02")
	scope = date + "/" + service + "/tc3_request"
	toSign := Algorithm + "\n" + strconv.FormatInt(ts, 10) + "\n" + scope + "\n" + sha256hex([]byte(canonical))
	kDate := hmacSHA256([]byte("TC3"+secretKey), date)
	kService := hmacSHA256(kDate, service)
	kSigning := hmacSHA256(kService, "tc3_request")
	return hex.EncodeToString(hmacSHA256(kSigning, toSign)), scope
}

// canonicalRequest builds TC3's canonical request for r: signed names
// its signed headers, lower-case, in order (values are trimmed and
// lower-cased, as the API 3.0 signing guide prescribes).
func canonicalRequest(r *http.Request, body []byte, signed []string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteString("\n/\n")
	if r.Method != http.MethodPost {
		b.WriteString(r.URL.RawQuery)
	}
	b.WriteByte('\n')
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = hostOf(r)
		}
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(strings.ToLower(strings.TrimSpace(v)))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	if r.Header.Get("X-TC-Content-SHA256") == unsignedPayload {
		b.WriteString(sha256hex([]byte(unsignedPayload)))
	} else {
		b.WriteString(sha256hex(body))
	}
	return b.String()
}

func hostOf(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// signRequest sets X-TC-Timestamp and Authorization on r, signing
// content-type and host as Tencent's Go SDK does.
func signRequest(r *http.Request, body []byte, secretID, secretKey string, now time.Time) {
	ts := now.Unix()
	r.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	signed := []string{"content-type", "host"}
	sig, scope := signature(secretKey, Service, ts, canonicalRequest(r, body, signed))
	r.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		Algorithm, secretID, scope, strings.Join(signed, ";"), sig))
}

// authorization is a parsed TC3 Authorization header.
type authorization struct {
	secretID, date, service string
	signed                  []string
	signature               string
}

func parseAuthorization(h string) (authorization, bool) {
	var a authorization
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 4 || f[3] != "tc3_request" || f[0] == "" {
				return a, false
			}
			a.secretID, a.date, a.service = f[0], f[1], f[2]
		case "SignedHeaders":
			a.signed = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		default:
			return a, false
		}
	}
	return a, a.secretID != "" && len(a.signed) > 0 && a.signature != ""
}

// authError is an AuthFailure answer.
func authError(vendor, msg string) *vision.Error {
	return &vision.Error{Code: vision.CodeUnauthorized, VendorCode: vendor, Message: msg}
}

// VerifyTC3 checks a TC3-HMAC-SHA256 signed API 3.0 request as Tencent
// Cloud does and returns the SecretId that signed it. body is the raw
// request body; lookup returns the SecretKey of a SecretId it knows; now
// is the server's clock (X-TC-Timestamp must be within MaxClockSkew of it).
//
// A failure is a *vision.Error with code unauthorized and Tencent's own
// error code as VendorCode, which WriteError answers with (HTTP 200,
// Response.Error):
//   - AuthFailure.InvalidAuthorization: no Authorization header, or one
//     that is not TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…;
//     or SignedHeaders without content-type and host;
//   - AuthFailure.SignatureExpire: X-TC-Timestamp missing, unparsable or
//     more than five minutes from now;
//   - AuthFailure.SecretIdNotFound: lookup does not know the SecretId;
//   - AuthFailure.SignatureFailure: the credential scope's date is not
//     the timestamp's UTC date, its service is not tiia, or the signature
//     does not match (compared in constant time).
//
// secretID is "" whenever err is set. Temporary credentials' X-TC-Token
// is not checked. VerifyTC3 reads
// nothing but r's method, URL, Host and headers, and body.
func VerifyTC3(r *http.Request, body []byte, lookup func(secretID string) (secretKey string, ok bool), now time.Time) (secretID string, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", authError("AuthFailure.InvalidAuthorization", "Authorization header is missing.")
	}
	a, ok := parseAuthorization(h)
	if !ok {
		return "", authError("AuthFailure.InvalidAuthorization", "Authorization header is not TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=….")
	}
	var hasCT, hasHost bool
	for i, s := range a.signed {
		s = strings.ToLower(s)
		a.signed[i] = s
		hasCT = hasCT || s == "content-type"
		hasHost = hasHost || s == "host"
	}
	if !hasCT || !hasHost {
		return "", authError("AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host.")
	}
	ts, perr := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if perr != nil {
		return "", authError("AuthFailure.SignatureExpire", "X-TC-Timestamp is missing or not a unix time.")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return "", authError("AuthFailure.SignatureExpire", "Signature expired. Timestamp and server time cannot differ by more than five minutes.")
	}
	key, ok := lookup(a.secretID)
	if !ok {
		return "", authError("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct.")
	}
	if a.service != Service || a.date != time.Unix(ts, 0).UTC().Format("2006-01-02") {
		return "", authError("AuthFailure.SignatureFailure", "The credential scope does not match the request's date or service.")
	}
	want, _ := signature(key, Service, ts, canonicalRequest(r, body, a.signed))
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.signature)) != 1 {
		return "", authError("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct.")
	}
	return a.secretID, nil
}
