package rekognition

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/cutover/cutover/vision"
)

// VerifySignature checks r's SigV4 Authorization header against creds by
// signing the same request (its signed headers, body and X-Amz-Date) with
// the SDK's signer and comparing signatures. It is what the simulator uses
// to prove that clients, and the proxy when it re-signs, sign correctly.
func VerifySignature(r *http.Request, body []byte, creds aws.Credentials) error {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		return vendorErr(vision.CodeUnauthorized, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return vendorErr(vision.CodeUnauthorized, "IncompleteSignatureException", "Authorization header is incomplete")
	}
	if scope[0] != creds.AccessKeyID {
		return vendorErr(vision.CodeUnauthorized, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return vendorErr(vision.CodeUnauthorized, "IncompleteSignatureException", "X-Amz-Date is missing or malformed")
	}
	clone, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return vendorErr(vision.CodeUnauthorized, "InvalidSignatureException", "request cannot be re-signed")
	}
	clone.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			clone.ContentLength = int64(len(body))
		default:
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, clone, hex.EncodeToString(sum[:]), scope[3], scope[2], t); err != nil {
		return vendorErr(vision.CodeUnauthorized, "InvalidSignatureException", err.Error())
	}
	_, want, _ := strings.Cut(clone.Header.Get("Authorization"), "Signature=")
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return vendorErr(vision.CodeUnauthorized, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided.")
	}
	return nil
}
