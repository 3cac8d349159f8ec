// Package formats is the registry of wire formats: it builds a format's
// client from a configured provider and its server codec by name. It is the
// only package that knows every format; everything else asks it.
package formats

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/azure"
	"github.com/cutover/cutover/vision/baidu"
	"github.com/cutover/cutover/vision/gcv"
	"github.com/cutover/cutover/vision/holysheep"
	"github.com/cutover/cutover/vision/openai"
	"github.com/cutover/cutover/vision/rekognition"
	"github.com/cutover/cutover/vision/tencent"
)

// ClientCodec returns the client codec of p's format, with p's
// credentials; the openai format also takes its prompt from cfg and builds
// its response schema from tx.
func ClientCodec(cfg *config.Config, tx *vision.Taxonomy, p *config.Provider) (vision.ClientCodec, error) {
	switch p.Format {
	case config.FormatOpenAI:
		prompt := cfg.PromptFor(p)
		if prompt == nil {
			return nil, fmt.Errorf("no prompt %q under prompts:", p.Prompt)
		}
		if tx == nil {
			return nil, fmt.Errorf("the openai format needs the taxonomy for its schema")
		}
		return openai.NewCodec(p.BaseURL.String(), p.Credentials.APIKey.Value(), p.Model, *prompt, tx), nil
	case config.FormatRekognition:
		return rekognition.NewCodec(p.BaseURL.String(), p.Region, aws.Credentials{
			AccessKeyID: p.Credentials.AccessKeyID.Value(), SecretAccessKey: p.Credentials.SecretAccessKey.Value(),
			SessionToken: p.Credentials.SessionToken.Value(), Source: "cutover config"}), nil
	case config.FormatGCV:
		return gcv.NewCodec(p.BaseURL.String(), p.Credentials.APIKey.Value()), nil
	case config.FormatAzure:
		return azure.NewCodec(p.BaseURL.String(), p.Credentials.APIKey.Value()), nil
	case config.FormatHolySheep:
		return holysheep.NewCodec(p.BaseURL.String(), p.Credentials.APIKey.Value(), p.Model), nil
	case config.FormatTencent:
		return tencent.NewCodec(p.BaseURL.String(), p.Credentials.SecretID.Value(), p.Credentials.SecretKey.Value(), p.Region, p.Action), nil
	case config.FormatBaidu:
		return baidu.NewCodec(p.BaseURL.String(), p.Credentials.APIKey.Value(), p.Credentials.SecretKey.Value()), nil
	}
	return nil, fmt.Errorf("unknown format %q", p.Format)
}

// NewClient returns a Provider for the provider named name: its codec, its
// timeout and its max_rps limit, over hc (nil means vision's pooled default).
func NewClient(cfg *config.Config, tx *vision.Taxonomy, name string, hc *http.Client) (*vision.Client, error) {
	p, ok := cfg.Providers[name]
	if !ok {
		return nil, fmt.Errorf("no provider %q under providers: in %s", name, cfg.File)
	}
	codec, err := ClientCodec(cfg, tx, p)
	if err != nil {
		return nil, err
	}
	if bc, ok := codec.(*baidu.Codec); ok && hc != nil {
		bc.HTTP = hc // token requests and replays share the client's pool
	}
	c := &vision.Client{Codec: codec, HTTP: hc, Timeout: p.Timeout.D()}
	if p.MaxRPS > 0 {
		lim := rate.NewLimiter(rate.Limit(p.MaxRPS), max(1, int(p.MaxRPS)))
		c.Wait = lim.Wait
	}
	return c, nil
}

// ServerCodec returns the server codec of a format.
func ServerCodec(f config.Format) (vision.ServerCodec, error) {
	switch f {
	case config.FormatRekognition:
		return &rekognition.Codec{}, nil
	case config.FormatGCV:
		return &gcv.Codec{}, nil
	case config.FormatAzure:
		return &azure.Codec{}, nil
	case config.FormatHolySheep:
		return &holysheep.Codec{}, nil
	case config.FormatOpenAI:
		return &openai.Codec{}, nil
	case config.FormatTencent:
		return &tencent.Codec{}, nil
	case config.FormatBaidu:
		return &baidu.Codec{}, nil
	}
	return nil, fmt.Errorf("unknown format %q", f)
}
