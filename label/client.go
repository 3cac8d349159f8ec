package label

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client is a Go client of the labelling API, for scripts (the demo's
// tools/labelbot answers through it) and tests.
type Client struct {
	// Base is the server's URL, e.g. http://127.0.0.1:8095.
	Base string
	// Token is sent as a bearer token when set.
	Token string
	// HTTP is the client to use (nil: http.DefaultClient).
	HTTP *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return fmt.Sprintf("label API: %d: %s", e.Status, e.Msg) }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling the label API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("reading the label API's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &APIError{resp.StatusCode, e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding the label API's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Next returns the next item without a decision (Done when none is left).
func (c *Client) Next(ctx context.Context) (NextResponse, error) {
	var r NextResponse
	err := c.do(ctx, http.MethodGet, "/api/next", nil, &r)
	return r, err
}

// Label sends a decision.
func (c *Client) Label(ctx context.Context, req LabelRequest) (LabelResponse, error) {
	var r LabelResponse
	err := c.do(ctx, http.MethodPost, "/api/label", req, &r)
	return r, err
}

// Progress returns the counts so far.
func (c *Client) Progress(ctx context.Context) (Progress, error) {
	var r Progress
	err := c.do(ctx, http.MethodGet, "/api/progress", nil, &r)
	return r, err
}

// Search returns taxonomy leaves matching q.
func (c *Client) Search(ctx context.Context, q string, limit int) ([]SearchHit, error) {
	var r SearchResponse
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/taxonomy?limit=%d&q=%s", limit, url.QueryEscape(q)), nil, &r)
	return r.Categories, err
}

// Image returns a sampled image's bytes.
func (c *Client) Image(ctx context.Context, it Item) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Base, "/")+it.Image, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the image: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &APIError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	return b, nil
}
