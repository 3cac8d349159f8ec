package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/cutover/cutover/config"
)

// maxFetchRedirects is how many redirects an image_url may take.
const maxFetchRedirects = 3

// The two answers a client gets about an image_url it cannot have. They
// say nothing of the destination's status, ports or addresses, so that
// the service cannot be used to map the network it sits in.
var (
	errFetchNotAllowed = errors.New("image_url not allowed")
	errFetchFailed     = errors.New("could not fetch image_url")
)

// fetchGuard decides which addresses image_url downloads may connect to.
// Every connection is checked at dial time, on the IP address actually
// dialled (after DNS, for every redirect), so neither a DNS answer that
// changes between check and use (rebinding) nor a redirect can reach a
// refused address. Refused unless fetch_allow lists them: loopback,
// link-local, private (RFC 1918, fc00::/7), shared (CGNAT), multicast,
// documentation, benchmarking, reserved and unspecified ranges — every
// special-purpose range of the IANA registries, and for IPv6 anything
// outside global unicast (the list is code.dny.dev/ssrf's).
type fetchGuard struct {
	hosts    map[string]bool // exact host names
	suffixes []string        // ".cdn.internal" for "*.cdn.internal"
	guardian *ssrf.Guardian
}

// newFetchGuard builds the guard from pipeline.serve.fetch_allow entries.
func newFetchGuard(allow []string) (*fetchGuard, error) {
	g := &fetchGuard{hosts: map[string]bool{}}
	var v4, v6 []netip.Prefix
	for _, e := range allow {
		host, prefix, err := config.ParseFetchAllow(e)
		if err != nil {
			return nil, fmt.Errorf("pipeline.serve.fetch_allow %q: %w", e, err)
		}
		switch {
		case prefix.IsValid() && prefix.Addr().Is4():
			v4 = append(v4, prefix)
		case prefix.IsValid():
			v6 = append(v6, prefix)
		case strings.HasPrefix(host, "*."):
			g.suffixes = append(g.suffixes, host[1:])
		default:
			g.hosts[host] = true
		}
	}
	g.guardian = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...))
	return g, nil
}

// hostAllowed reports whether fetch_allow lists host by name.
func (g *fetchGuard) hostAllowed(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if g.hosts[h] {
		return true
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// literalAllowed reports whether a URL host that is an IP literal may be
// fetched (a host name is judged at dial time): refusing it here sends no
// packet at all, not even a socket's.
func (g *fetchGuard) literalAllowed(host string) bool {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil || g.hostAllowed(host) {
		return true
	}
	a = a.Unmap()
	network := "tcp4"
	if a.Is6() {
		network = "tcp6"
	}
	return g.guardian.Safe(network, netip.AddrPortFrom(a, 80).String(), nil) == nil
}

// notAllowedError marks a connection the guard refused; its text (which
// names the address) stays in the server, never in an answer.
type notAllowedError struct{ err error }

func (e *notAllowedError) Error() string { return "image_url not allowed: " + e.err.Error() }
func (e *notAllowedError) Unwrap() error { return errFetchNotAllowed }

// dialContext dials through the guard: a listed host name may reach any
// address; otherwise the dialled IP must pass the guardian. base.Control,
// if any, runs after the guard's check.
func (g *fetchGuard) dialContext(base *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		named := g.hostAllowed(host)
		d := *base
		d.Control = func(network, address string, c syscall.RawConn) error {
			if !named {
				if err := g.guardian.Safe(network, address, c); err != nil {
					return &notAllowedError{err: err}
				}
			}
			if base.Control != nil {
				return base.Control(network, address, c)
			}
			return nil
		}
		return d.DialContext(ctx, network, addr)
	}
}

// newFetcher is the image_url client: the guard on every dial, no proxy
// from the environment (a proxy would dial for us, unchecked), at most
// maxFetchRedirects redirects, each checked, timeout for the whole
// download. base, when not nil, is the dialer to start from (its Resolver
// and Control are kept: tests point lookups at their own DNS and refuse
// any dial off loopback).
func newFetcher(allow []string, timeout time.Duration, base *net.Dialer) (*http.Client, *fetchGuard, error) {
	g, err := newFetchGuard(allow)
	if err != nil {
		return nil, nil, err
	}
	d := &net.Dialer{}
	if base != nil {
		d = base
	}
	d.Timeout, d.KeepAlive = 5*time.Second, 30*time.Second
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.dialContext(d),
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           64,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > maxFetchRedirects {
			return fmt.Errorf("more than %d redirects: %w", maxFetchRedirects, errFetchFailed)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" || !g.literalAllowed(req.URL.Hostname()) {
			return errFetchNotAllowed
		}
		return nil
	}}, g, nil
}

// fetch downloads an image_url (http or https), bounded in size, time and
// redirects, through the guard. Its errors are errFetchNotAllowed or
// errFetchFailed (and the body limit's), with nothing of the destination
// in them; the cause is logged.
func (s *Server) fetch(ctx context.Context, raw string) ([]byte, int, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !s.guard.literalAllowed(u.Hostname()) {
		return nil, http.StatusBadRequest, errFetchNotAllowed
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, http.StatusBadRequest, errFetchNotAllowed
	}
	resp, err := s.fetcher.Do(req)
	if err != nil {
		s.logFetch(err)
		if errors.Is(err, errFetchNotAllowed) {
			return nil, http.StatusBadRequest, errFetchNotAllowed
		}
		return nil, http.StatusUnprocessableEntity, errFetchFailed
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.logFetch(fmt.Errorf("answered %s", resp.Status))
		return nil, http.StatusUnprocessableEntity, errFetchFailed
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxBodyBytes+1))
	if err != nil {
		s.logFetch(err)
		return nil, http.StatusUnprocessableEntity, errFetchFailed
	}
	if int64(len(b)) > s.MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the image at image_url is larger than %d bytes", s.MaxBodyBytes)
	}
	return b, 0, nil
}

// logFetch keeps why a download failed, for the operator.
func (s *Server) logFetch(err error) {
	if s.Log != nil {
		s.Log.Info("image_url refused or failed", "err", s.Scrub.Error(err))
	}
}
