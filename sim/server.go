package sim

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/azure"
	"github.com/cutover/cutover/vision/baidu"
	"github.com/cutover/cutover/vision/formats"
	"github.com/cutover/cutover/vision/gcv"
	"github.com/cutover/cutover/vision/holysheep"
	"github.com/cutover/cutover/vision/openai"
	"github.com/cutover/cutover/vision/rekognition"
	"github.com/cutover/cutover/vision/tencent"
)

// Server is one simulated provider over HTTP.
type Server struct {
	Model *Model
	Codec vision.ServerCodec
	Creds config.Credentials
	// TimeScale multiplies every simulated delay; 0 removes sleeping.
	TimeScale float64

	batch  *holysheep.BatchServer
	tokens *baidu.Tokens // baidu: the OAuth token endpoint
}

// NewServer returns the HTTP side of a model.
func NewServer(m *Model, s *config.Simulator, timeScale float64) (*Server, error) {
	codec, err := formats.ServerCodec(s.Format)
	if err != nil {
		return nil, err
	}
	srv := &Server{Model: m, Codec: codec, Creds: s.Credentials, TimeScale: timeScale}
	if s.Format == config.FormatBaidu {
		srv.tokens = &baidu.Tokens{APIKey: s.Credentials.APIKey.Value(), SecretKey: s.Credentials.SecretKey.Value()}
	}
	if s.Format == config.FormatHolySheep {
		srv.batch = &holysheep.BatchServer{Provider: vision.ProviderFunc(srv.classify),
			Backoff: func(n int) time.Duration { return srv.scale(500 * time.Millisecond << (n - 1)) }}
	}
	return srv, nil
}

func (s *Server) scale(d time.Duration) time.Duration { return time.Duration(float64(d) * s.TimeScale) }

// sleep waits d scaled, or until ctx ends.
func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	return s.sleepFrom(ctx, time.Time{}, d)
}

// sleepFrom waits until d scaled has passed since from (now when zero):
// a simulated latency is the provider's time from a received request to
// its answer, so the simulator's own decoding counts towards it rather
// than being added on top (an OpenAI-format body costs the simulator
// several times a Rekognition one, which a vendor's latency would hide).
func (s *Server) sleepFrom(ctx context.Context, from time.Time, d time.Duration) error {
	d = s.scale(d)
	if !from.IsZero() && d > 0 {
		d -= time.Since(from)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// classify is the model as a Provider, sleeping its latency: the batch
// endpoint's worker.
func (s *Server) classify(ctx context.Context, req vision.Request) (vision.Result, error) {
	out := s.Model.Decide(req)
	if err := s.sleep(ctx, out.Latency); err != nil {
		return vision.Result{}, vision.TransportError(err)
	}
	if out.Err != nil {
		return vision.Result{}, out.Err
	}
	return out.Result, nil
}

// authorize checks the format's credentials when the simulator has them.
func (s *Server) authorize(r *http.Request, body []byte) (string, error) {
	key := s.Creds.APIKey.Value()
	switch s.Model.Format {
	case string(config.FormatRekognition):
		if s.Creds.AccessKeyID == "" {
			return "", nil
		}
		return "", rekognition.VerifySignature(r, body, aws.Credentials{
			AccessKeyID: s.Creds.AccessKeyID.Value(), SecretAccessKey: s.Creds.SecretAccessKey.Value()})
	case string(config.FormatHolySheep), string(config.FormatOpenAI):
		return holysheep.Authorize(r, key)
	case string(config.FormatGCV):
		got := gcv.APIKeyOf(r)
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			got = b
		}
		return "", checkKey(got, key)
	case string(config.FormatAzure):
		return "", checkKey(r.Header.Get(azure.KeyHeader), key)
	case string(config.FormatTencent):
		if s.Creds.SecretID == "" {
			return "", nil
		}
		return tencent.VerifyTC3(r, body, func(id string) (string, bool) {
			if subtle.ConstantTimeCompare([]byte(id), []byte(s.Creds.SecretID.Value())) == 1 {
				return s.Creds.SecretKey.Value(), true
			}
			return "", false
		}, time.Now())
	case string(config.FormatBaidu):
		return "", s.tokens.Check(r)
	}
	return "", nil
}

func checkKey(got, want string) error {
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
		return nil
	}
	return vision.Errorf(vision.CodeUnauthorized, "invalid key")
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.batch != nil && holysheep.IsBatch(r) {
		key, err := s.authorize(r, nil)
		if err != nil {
			s.Codec.WriteError(w, err)
			return
		}
		s.batch.ServeHTTP(w, r, key)
		return
	}
	if s.tokens != nil && baidu.IsTokenRequest(r) {
		s.tokens.ServeHTTP(w, r)
		return
	}
	if !s.Codec.IsClassify(r) {
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		s.Codec.WriteError(w, vision.Errorf(vision.CodeBadRequest, "unsupported operation %s %s", r.Method, r.URL.Path))
		return
	}
	body, tooLarge, err := vision.ReadBody(r, s.Codec.MaxBodyBytes())
	if err != nil {
		return
	}
	received := time.Now()
	if tooLarge {
		w.Header().Set("Connection", "close")
		s.Codec.WriteError(w, vision.Errorf(vision.CodeTooLarge, "request body exceeds %d bytes", s.Codec.MaxBodyBytes()))
		return
	}
	if _, err := s.authorize(r, body); err != nil {
		vision.PutBody(body)
		s.Codec.WriteError(w, err)
		return
	}
	defer vision.PutBody(body)
	req, err := s.Codec.DecodeRequest(r, body)
	if err != nil {
		s.Codec.WriteError(w, err)
		return
	}
	defer req.Image.Lease.Release() // nothing keeps the bytes past the answer
	out := s.Model.Decide(req)
	var cc *openai.ChatCompletion
	if out.Err == nil && s.Model.Format == string(config.FormatOpenAI) {
		c, outTokens := s.Model.completion(req, out)
		cc = &c
		out.Latency += time.Duration(outTokens) * s.Model.Profile.LLM.PerOutputToken.D()
	}
	if s.Model.limiter != nil && s.Model.Format == string(config.FormatOpenAI) {
		s.Model.rateHeaders(w.Header())
	}
	if err := s.sleepFrom(r.Context(), received, out.Latency); err != nil {
		return // the client went away
	}
	if cc != nil {
		openai.WriteCompletion(w, *cc)
		return
	}
	if out.Err == nil {
		s.Codec.WriteResult(w, req, out.Result)
		return
	}
	switch out.Err.Code {
	case vision.CodeNetwork:
		// A connection reset mid-request: hijack and close without answering.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case vision.CodeInvalidResponse:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Labels":[{"Name":"T-Sh`)
	default:
		s.Codec.WriteError(w, out.Err)
	}
}

// Running is a started simulator.
type Running struct {
	Name   string
	Format string
	URL    string
	srv    *http.Server
	ln     net.Listener
}

// Listen starts serving s on addr.
func Listen(name, addr string, s *Server) (*Running, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("simulate.%s: %w", name, err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20,
		ErrorLog: nil}
	rn := &Running{Name: name, Format: s.Model.Format, URL: "http://" + ln.Addr().String(), srv: hs, ln: ln}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return rn, nil
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (r *Running) Shutdown(ctx context.Context) error { return r.srv.Shutdown(ctx) }
