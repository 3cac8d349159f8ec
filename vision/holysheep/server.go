package holysheep

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/cutover/cutover/vision"
)

// Authorize checks the Bearer key when apiKey is set and returns the key
// the caller presented (used to sign its webhooks).
func Authorize(r *http.Request, apiKey string) (string, error) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if apiKey == "" {
		return got, nil
	}
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(apiKey)) != 1 {
		return "", vision.Errorf(vision.CodeUnauthorized, "invalid API key")
	}
	return got, nil
}

// NewServer serves classify and batch over p, checking apiKey when set.
func NewServer(p vision.Provider, apiKey string) http.Handler {
	codec := &Codec{}
	classify := vision.Serve(codec, p)
	batch := &BatchServer{Provider: p}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := Authorize(r, apiKey)
		if err != nil {
			WriteError(w, err)
			return
		}
		if IsBatch(r) {
			batch.ServeHTTP(w, r, key)
			return
		}
		classify.ServeHTTP(w, r)
	})
}
