package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// forwardEnv is a proxy with forward mode on, a fresh interception CA and
// extra forward settings.
func forwardEnv(t *testing.T, extra string) *env {
	t.Helper()
	caCert, caKey, err := InitCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, envOpts{proxyExtra: fmt.Sprintf("forward: {enabled: true, ca_cert: %s, ca_key: %s%s}", caCert, caKey, extra)})
}

// connect sends CONNECT target through the proxy and returns the status
// line's code, the body and, for a 200, the tunnel.
func connect(t *testing.T, e *env, target, auth string) (int, string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: Basic " + auth + "\r\n"
	}
	io.WriteString(c, req+"\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode == 200 {
		return 200, "", c
	}
	b, _ := io.ReadAll(resp.Body)
	c.Close()
	return resp.StatusCode, string(b), nil
}

// fakeRedis answers PING with +PONG and counts the connections it took.
func fakeRedis(t *testing.T) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				if _, err := c.Read(buf); err == nil {
					io.WriteString(c, "+PONG\r\n")
				}
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// TestForwardRefusesUnlistedHosts: forward mode tunnels nothing by
// default: CONNECT to a local Redis, and an absolute URL to the proxy's
// own admin port, get 403 with the reason and never connect; refusals
// are counted.
func TestForwardRefusesUnlistedHosts(t *testing.T) {
	redis, conns := fakeRedis(t)
	e := forwardEnv(t, "")
	code, body, _ := connect(t, e, redis, "")
	if code != http.StatusForbidden || !strings.Contains(body, "not in proxy.forward.tunnel") {
		t.Errorf("CONNECT %s: %d %q, want 403 saying it is not listed", redis, code, body)
	}
	if conns.Load() != 0 {
		t.Errorf("the proxy connected to the unlisted host %d times", conns.Load())
	}
	proxyURL, _ := url.Parse(e.proxyURL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := c.Get(e.adminURL + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), "agreement") {
		t.Errorf("absolute URL to the admin port: %d %.100s, want 403", resp.StatusCode, b)
	}
	if m := scrape(t, e, "cutover_forward_refused_total"); !strings.Contains(m, `reason="not_listed"} 2`) {
		t.Errorf("metrics:\n%s", m)
	}
}

// TestForwardLoopbackNeedsExactListing: a wildcard that covers a loopback
// address does not open it (the resolved address is checked at dial
// time); an exact listing does. A listed port that is closed answers
// like any other unreachable destination, without saying why.
func TestForwardLoopbackNeedsExactListing(t *testing.T) {
	redis, conns := fakeRedis(t)
	closed := freeAddr(t)
	e := forwardEnv(t, fmt.Sprintf(", tunnel: [\"127.0.0.*:*\", %q, %q]", redis, closed))
	_, adminPort, _ := net.SplitHostPort(strings.TrimPrefix(e.adminURL, "http://"))
	code, body, _ := connect(t, e, "127.0.0.1:"+adminPort, "")
	if code != http.StatusBadGateway || !strings.Contains(body, "does not reach") {
		t.Errorf("CONNECT to the admin port under a wildcard: %d %q, want 502 refused address", code, body)
	}
	code, _, tun := connect(t, e, redis, "")
	if code != 200 {
		t.Fatalf("CONNECT to an exactly listed loopback host: %d", code)
	}
	io.WriteString(tun, "PING\r\n")
	line, _ := bufio.NewReader(tun).ReadString('\n')
	tun.Close()
	if line != "+PONG\r\n" || conns.Load() != 1 {
		t.Errorf("tunnel answered %q (%d connections)", line, conns.Load())
	}
	code, body, _ = connect(t, e, closed, "")
	if code != http.StatusBadGateway || strings.Contains(body, "refused") || !strings.Contains(body, "could not reach the destination") {
		t.Errorf("CONNECT to a closed listed port: %d %q, want a 502 that does not say why", code, body)
	}
}

// TestForwardAuth: with proxy.forward.auth, CONNECT and absolute URLs
// need Proxy-Authorization: Basic.
func TestForwardAuth(t *testing.T) {
	t.Setenv("CUTOVER_TEST_FWD_PASS", "fwd-pass-Jj61")
	redis, _ := fakeRedis(t)
	e := forwardEnv(t, fmt.Sprintf(", tunnel: [%q], auth: {username: team, password: \"${CUTOVER_TEST_FWD_PASS}\"}", redis))
	if code, _, _ := connect(t, e, redis, ""); code != http.StatusProxyAuthRequired {
		t.Errorf("CONNECT without credentials: %d, want 407", code)
	}
	if code, _, _ := connect(t, e, redis, b64([]byte("team:wrong"))); code != http.StatusProxyAuthRequired {
		t.Errorf("CONNECT with a wrong password: %d, want 407", code)
	}
	code, _, tun := connect(t, e, redis, b64([]byte("team:fwd-pass-Jj61")))
	if code != 200 {
		t.Fatalf("CONNECT with credentials: %d", code)
	}
	tun.Close()
	if strings.Contains(e.logs.String(), "fwd-pass-Jj61") {
		t.Error("the proxy password is in the log")
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
