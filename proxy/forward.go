package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/elazarl/goproxy"

	"github.com/cutover/cutover/config"
)

// forwardPolicy decides where forward mode may go: the intercepted hosts
// (the primary's), and the hosts proxy.forward.tunnel lists, untouched.
// Every other destination is refused with 403 and a reason, and so is a
// destination that resolves to loopback, link-local, an unspecified
// address or one of the proxy's own listeners, unless its exact host:port
// is listed: an open forward proxy is a way into the machine's own
// services and a port scanner. With proxy.forward.auth, every forward
// request and CONNECT needs Proxy-Authorization: Basic.
type forwardPolicy struct {
	intercept map[string]bool
	patterns  []string
	exact     map[string]bool
	user      string
	pass      string
	met       *metrics

	mu  sync.Mutex
	own []string // host:port of the proxy's own listeners
}

func newForwardPolicy(fw config.ForwardProxy, intercept map[string]bool, met *metrics) *forwardPolicy {
	p := &forwardPolicy{intercept: intercept, patterns: fw.Tunnel, exact: map[string]bool{}, met: met}
	for _, t := range fw.Tunnel {
		if !strings.Contains(t, "*") {
			p.exact[strings.ToLower(t)] = true
		}
	}
	if fw.Auth != nil {
		p.user, p.pass = fw.Auth.Username.Value(), fw.Auth.Password.Value()
	}
	return p
}

// listening records the proxy's own listener addresses.
func (p *forwardPolicy) listening(addrs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.own = append(p.own, addrs...)
}

// allowed reports whether host:port may be reached, or why not.
func (p *forwardPolicy) allowed(hostport string) (bool, string) {
	hp := strings.ToLower(hostport)
	if p.intercept[hp] {
		return true, ""
	}
	for _, pat := range p.patterns {
		if matchHostPort(strings.ToLower(pat), hp) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%s is not in proxy.forward.tunnel", hostport)
}

// matchHostPort matches host:port against a pattern whose host labels or
// port may be "*".
func matchHostPort(pattern, hostport string) bool {
	ph, pp, err1 := net.SplitHostPort(pattern)
	h, port, err2 := net.SplitHostPort(hostport)
	if err1 != nil || err2 != nil || (pp != "*" && pp != port) {
		return false
	}
	pl, hl := strings.Split(ph, "."), strings.Split(h, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
	}
	return true
}

// authorized checks Proxy-Authorization when proxy.forward.auth is set.
func (p *forwardPolicy) authorized(r *http.Request) bool {
	if p.user == "" {
		return true
	}
	v, ok := strings.CutPrefix(r.Header.Get("Proxy-Authorization"), "Basic ")
	if !ok {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return false
	}
	u, pw, _ := strings.Cut(string(b), ":")
	return subtle.ConstantTimeCompare([]byte(u), []byte(p.user))&subtle.ConstantTimeCompare([]byte(pw), []byte(p.pass)) == 1
}

// errRefusedAddress is a destination that resolved to an address forward
// mode does not reach.
var errRefusedAddress = errors.New("destination address not allowed")

// dial connects to addr after checking every address it resolves to:
// loopback, link-local and unspecified addresses, and the proxy's own
// listeners, are refused unless addr is listed exactly. The check is on
// the resolved address, so a name cannot be pointed at them.
func (p *forwardPolicy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	explicit := p.exact[strings.ToLower(addr)] || p.intercept[strings.ToLower(addr)]
	d := &net.Dialer{Timeout: dialTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		if explicit {
			return nil
		}
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return errRefusedAddress
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || p.isOwn(ip, port) {
			return errRefusedAddress
		}
		return nil
	}}
	return d.DialContext(ctx, network, addr)
}

// isOwn reports whether ip:port is one of the proxy's own listeners.
func (p *forwardPolicy) isOwn(ip net.IP, port string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.own {
		h, pt, err := net.SplitHostPort(a)
		if err != nil || pt != port {
			continue
		}
		lip := net.ParseIP(h)
		if lip == nil || lip.IsUnspecified() || lip.Equal(ip) || isLocalAddr(ip) {
			return true
		}
	}
	return false
}

// isLocalAddr reports whether ip is one of this host's interface addresses.
func isLocalAddr(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// refuse answers a refused forward request (403, or 407 for missing
// proxy credentials) with a plain-text reason, counted by reason.
func (p *forwardPolicy) refuse(r *http.Request, status int, reason, detail string) *http.Response {
	p.met.forwardRefused.WithLabelValues(reason).Inc()
	resp := goproxy.NewResponse(r, goproxy.ContentTypeText, status, "cutover proxy: "+detail+"\n")
	if status == http.StatusProxyAuthRequired {
		resp.Header.Set("Proxy-Authenticate", `Basic realm="cutover proxy"`)
	}
	return resp
}

// connectionError answers a tunnel or forward request whose destination
// could not be reached, without saying why: refused, reset and timed-out
// ports must look alike, or the proxy is a port scanner.
func connectionError(w io.Writer, ctx *goproxy.ProxyCtx, err error) {
	msg := "cutover proxy: could not reach the destination\n"
	if errors.Is(err, errRefusedAddress) {
		msg = "cutover proxy: the destination resolves to an address forward mode does not reach (list it in proxy.forward.tunnel)\n"
	}
	if rw, ok := w.(http.ResponseWriter); ok {
		http.Error(rw, strings.TrimSuffix(msg, "\n"), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s", strconv.Itoa(len(msg)), msg)
}
