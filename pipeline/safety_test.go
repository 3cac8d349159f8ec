package pipeline

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/cutover/cutover/vision/visiontest"
)

// imageServer is a real loopback server on addr ("127.0.0.1:0",
// "127.0.0.2:0", …) answering a PNG on /img.png, a redirect chain on
// /hop/N (N redirects, then the image), a redirect to ?to= on /redirect and
// 404 elsewhere; hits counts the requests it served.
func imageServer(t *testing.T, addr string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var n int
		switch {
		case r.URL.Path == "/img.png":
			w.Write(visiontest.PNG(16, 16, 77))
		case r.URL.Path == "/redirect":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		case fmtScan(r.URL.Path, "/hop/%d", &n) && n > 0:
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
		case fmtScan(r.URL.Path, "/hop/%d", &n):
			w.Write(visiontest.PNG(16, 16, 78))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &hits
}

func fmtScan(s, format string, n *int) bool {
	_, err := fmt.Sscanf(s, format, n)
	return err == nil
}

// TestImageURLGuard: image_url reaches no loopback, link-local, private or
// other special-purpose address unless fetch_allow lists it, checked on the
// address dialled (a name that resolves to loopback, a redirect), and the
// answer says only "image_url not allowed" or "could not fetch image_url".
func TestImageURLGuard(t *testing.T) {
	t.Parallel()
	img, hits := imageServer(t, "127.0.0.1:0")
	other, otherHits := imageServer(t, "127.0.0.2:0") // loopback too, never allowed below
	_, port, _ := net.SplitHostPort(img.Listener.Addr().String())
	closed := freeLoopbackPort(t)
	dns := fakeDNS(t, "127.0.0.1") // answers every name with 127.0.0.1
	type tc struct {
		name, url string
		status    int
		msg       string
	}
	notAllowed := func(name, url string) tc { return tc{name, url, 400, "image_url not allowed"} }
	failed := func(name, url string) tc { return tc{name, url, 422, "could not fetch image_url"} }
	for _, group := range []struct {
		allow []string
		cases []tc
	}{
		{nil, []tc{
			notAllowed("loopback", img.URL+"/img.png"),
			notAllowed("a name that resolves to loopback", "http://localhost:"+port+"/img.png"),
			notAllowed("a public-looking name whose DNS answer is loopback", "http://images.example.com:"+port+"/img.png"),
			notAllowed("link-local metadata", "http://169.254.169.254/latest/meta-data/"),
			notAllowed("private 10/8", "http://10.0.0.1/img.png"),
			notAllowed("private 192.168/16", "http://192.168.1.1:8080/img.png"),
			notAllowed("CGNAT", "http://100.64.0.1/img.png"),
			notAllowed("unspecified", "http://0.0.0.0:"+port+"/img.png"),
			notAllowed("multicast", "http://224.0.0.1/img.png"),
			notAllowed("IPv6 loopback", "http://[::1]:"+port+"/img.png"),
			notAllowed("IPv6 unique local", "http://[fd00::1]/img.png"),
			notAllowed("IPv6 link-local", "http://[fe80::1]/img.png"),
			notAllowed("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:"+port+"/img.png"),
			notAllowed("not http", "file:///etc/passwd"),
			notAllowed("gopher", "gopher://127.0.0.1:"+port+"/"),
		}},
		{[]string{"127.0.0.1/32"}, []tc{
			{"allowed by CIDR", img.URL + "/img.png", 200, ""},
			{"three redirects", img.URL + "/hop/3", 200, ""},
			failed("four redirects", img.URL+"/hop/4"),
			notAllowed("a redirect to another loopback address", img.URL+"/redirect?to="+other.URL+"/img.png"),
			notAllowed("a redirect to link-local", img.URL+"/redirect?to=http://169.254.169.254/latest/meta-data/"),
			notAllowed("a redirect to a private address", img.URL+"/redirect?to=http://10.1.2.3/x.png"),
			failed("404", img.URL+"/missing.png"),
			failed("a closed port", "http://127.0.0.1:"+closed+"/img.png"),
		}},
		{[]string{"images.example.com"}, []tc{
			{"allowed by name, whatever it resolves to", "http://images.example.com:" + port + "/img.png", 200, ""},
			notAllowed("the same address by another name", "http://cdn.example.com:"+port+"/img.png"),
		}},
		{[]string{"*.example.com"}, []tc{
			{"allowed by wildcard", "http://cdn.example.com:" + port + "/img.png", 200, ""},
			notAllowed("the wildcard does not cover the bare domain", "http://example.com:"+port+"/img.png"),
		}},
	} {
		a := newAPI(t, func(s *Server) { s.FetchAllow, s.dialer = group.allow, loopbackOnly(t, dns) })
		for i, c := range group.cases {
			t.Run(fmt.Sprintf("%v/%s", group.allow, c.name), func(t *testing.T) {
				before := otherHits.Load()
				code, out := a.do("POST", fmt.Sprintf("/v1/products/g-%d/images", i), "application/json", jsonBody(map[string]string{"image_url": c.url}))
				if code != c.status {
					t.Fatalf("%s: %d %v, want %d", c.url, code, out, c.status)
				}
				if c.status != 200 && (out["error"] != c.msg || out["code"] != "image_url") {
					t.Errorf("%s: %v, want exactly {error: %q, code: image_url}", c.url, out, c.msg)
				}
				if otherHits.Load() != before {
					t.Errorf("%s reached 127.0.0.2", c.url)
				}
			})
		}
	}
	if hits.Load() == 0 {
		t.Error("the allowed server was never reached: the allowed cases tested nothing")
	}
}

// loopbackOnly is the fetcher's dialer for tests: names resolve through
// the DNS server at dns, and a tripwire under the guard refuses (and
// fails the test for) any dial off loopback, so that even a broken guard
// sends nothing to the addresses the test names.
func loopbackOnly(t *testing.T, dns string) *net.Dialer {
	return &net.Dialer{
		Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", dns)
		}},
		Control: func(network, address string, _ syscall.RawConn) error {
			if ap, err := netip.ParseAddrPort(address); err != nil || !ap.Addr().Unmap().IsLoopback() {
				t.Errorf("the guard let a dial to %s through", address)
				return errors.New("test tripwire: no dial off loopback")
			}
			return nil
		},
	}
}

// fakeDNS is a real DNS server on loopback UDP that answers every A query
// with ip and every other query with no records.
func fakeDNS(t *testing.T, ip string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	a := net.ParseIP(ip).To4()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: [4]byte(a)})
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// freeLoopbackPort is a port on 127.0.0.1 that nothing listens on.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// TestAsyncQueueBoundedByBytes: async uploads against a provider that
// never answers hold at most max_queue_bytes of images; past it, 503 with
// Retry-After; when the provider answers again the queue drains to 0.
func TestAsyncQueueBoundedByBytes(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hung := provider(t, "", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	const limit, size, uploads = 1 << 20, 100 << 10, 40
	a := newAPIOver(t, hung, func(s *Server) { s.MaxQueueBytes = limit; s.Workers = 2 })
	accepted, refused := 0, 0
	var peak int64
	body := jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(visiontest.Sized(size, 1))})
	for i := range uploads {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/products/q-%d/images?async=true", a.url, i), strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			refused++
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("upload %d: 503 without Retry-After", i)
			}
		default:
			t.Fatalf("upload %d: %d", i, resp.StatusCode)
		}
		peak = max(peak, a.srv.QueuedBytes())
	}
	// Nothing has finished (the provider hangs): what was accepted is queued.
	if held := int64(accepted) * size; held > limit || peak > limit {
		t.Errorf("%d uploads of %d KiB accepted (%d KiB held, peak %d KiB counted) against a hung provider; want at most max_queue_bytes %d KiB",
			accepted, size>>10, held>>10, peak>>10, limit>>10)
	}
	if accepted != limit/size || refused != uploads-accepted {
		t.Errorf("%d accepted, %d refused; want %d and %d", accepted, refused, limit/size, uploads-limit/size)
	}
	close(release)
	if !waitFor(t, 20*time.Second, func() bool { return a.srv.QueuedBytes() == 0 }) {
		t.Errorf("queued bytes %d after the provider answered, want 0", a.srv.QueuedBytes())
	}
}

// TestReviewCorrectionsChecked: a correction names a category, attribute
// kinds and values of the taxonomy (aliases become canonical values).
func TestReviewCorrectionsChecked(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	var ids []int
	for i := 0; len(ids) < 2 && i < 20; i++ {
		a.do("POST", fmt.Sprintf("/v1/products/c-%d/images", i), "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(visiontest.PNG(16, 16, uint64(300+i)))}))
		_, out := a.do("GET", "/v1/review", "", nil)
		ids = ids[:0]
		for _, it := range out["items"].([]any) {
			ids = append(ids, int(it.(map[string]any)["id"].(float64)))
		}
	}
	if len(ids) < 2 {
		t.Fatal("fewer than 2 review items")
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"action": "correct", "category": "not/a/category"}`, 400, "unknown_category"},
		{`{"action": "correct", "category": "apparel/topwear/tshirts", "attributes": {"shape": "round"}}`, 400, "unknown_attribute"},
		{`{"action": "correct", "category": "apparel/topwear/tshirts", "attributes": {"color": "ultraviolet"}}`, 400, "unknown_value"},
		{`{"action": "correct", "category": "apparel/topwear/tshirts", "attributes": {"pattern": "black"}}`, 400, "unknown_value"},
		{`{"action": "correct", "category": "apparel/topwear/tshirts", "attributes": {"color": ""}}`, 400, "unknown_value"},
		{`{"action": "correct", "category": "apparel/topwear/tshirts", "attributes": {"color": "black", "material": "unobtainium"}}`, 400, "unknown_value"},
	} {
		if code, out := a.do("POST", fmt.Sprintf("/v1/review/%d", ids[0]), "application/json", []byte(tc.body)); code != tc.status || out["code"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.body, code, out, tc.status, tc.code)
		}
	}
	items, _ := a.store.ListReview(context.Background(), 10)
	if len(items) < 2 || items[0].Status != "pending" {
		t.Fatalf("a refused correction changed the item: %+v", items)
	}
	code, out := a.do("POST", fmt.Sprintf("/v1/review/%d", ids[0]), "application/json", []byte(`{"action": "correct", "category": "apparel/topwear/tshirts", "attributes": {"color": "Black", "pattern": "solid"}}`))
	if code != 200 {
		t.Fatalf("a valid correction: %d %v", code, out)
	}
	corr := out["item"].(map[string]any)["correction"].(map[string]any)["attributes"].(map[string]any)
	if corr["color"] != "black" || corr["pattern"] != "solid" {
		t.Errorf("stored attributes %v, want canonical values", corr)
	}
}

// TestProductIDs: ids are valid UTF-8 of 1–128 characters (not bytes),
// without control, bidi or separator characters; invalid ones get 400 and
// are not stored.
func TestProductIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"sku-1", true},
		{"商品-١٢٣", true},
		{strings.Repeat("é", 128), true},  // 128 characters, 256 bytes
		{strings.Repeat("é", 129), false}, // 129 characters
		{strings.Repeat("a", 128), true},
		{"", false},
		{"sku\xff", false},  // invalid UTF-8
		{"sku\xc3", false},  // truncated sequence
		{"a b", false},      // space
		{"a/b", false},      // slash
		{"a\x00b", false},   // C0
		{"a\x7fb", false},   // DEL
		{"a\u0085b", false}, // C1 (NEL)
		{"a\u009bb", false}, // C1 (CSI)
		{"a\u202eb", false}, // RIGHT-TO-LEFT OVERRIDE
		{"a\u202ab", false}, // LEFT-TO-RIGHT EMBEDDING
		{"a\u2066b", false}, // LEFT-TO-RIGHT ISOLATE
		{"a\u2069b", false}, // POP DIRECTIONAL ISOLATE
		{"a\u200eb", false}, // LEFT-TO-RIGHT MARK
		{"a\u200fb", false}, // RIGHT-TO-LEFT MARK
		{"a\u061cb", false}, // ARABIC LETTER MARK
		{"a\u2028b", false}, // LINE SEPARATOR
		{"a\u2029b", false}, // PARAGRAPH SEPARATOR
		{"a\u2065b", true},  // unassigned next to the isolates: not a bidi control
		{"a\u200db", true},  // ZERO WIDTH JOINER (emoji sequences)
	} {
		if got := validID(tc.id); got != tc.ok {
			t.Errorf("validID(%+q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
	// Through the API: refused ids are not stored.
	a := newAPI(t, nil)
	png := base64.StdEncoding.EncodeToString(visiontest.PNG(16, 16, 5))
	for _, raw := range []string{"sku%FF", "sku%C3", "a%E2%80%AEb", "a%C2%85b", "a%E2%80%A8b", strings.Repeat("%C3%A9", 129)} {
		if code, out := a.do("POST", "/v1/products/"+raw+"/images", "application/json", jsonBody(map[string]string{"image_base64": png})); code != 400 || out["code"] != "invalid_product_id" {
			t.Errorf("POST %s: %d %v, want 400 invalid_product_id", raw, code, out)
		}
	}
	if code, out := a.do("POST", "/v1/products/"+strings.Repeat("%C3%A9", 128)+"/images", "application/json", jsonBody(map[string]string{"image_base64": png})); code != 200 {
		t.Errorf("128 characters of 2 bytes: %d %v, want 200", code, out)
	}
	if c, _ := a.store.Counts(context.Background()); c.Products != 1 {
		t.Errorf("%d products stored, want only the valid one", c.Products)
	}
}

// FuzzValidID: validID agrees with the rule as Unicode's own tables state
// it (Cc for control characters, Bidi_Control, Zl and Zp), for any bytes.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{"sku-1", "sku\xff", "a\u202eb", "a\u0085b", strings.Repeat("é", 129), "商品"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := utf8.ValidString(s) && utf8.RuneCountInString(s) >= 1 && utf8.RuneCountInString(s) <= 128
		for _, r := range s {
			if r == ' ' || r == '/' || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Zl, unicode.Zp) {
				want = false
			}
		}
		if got := validID(s); got != want {
			t.Errorf("validID(%+q) = %v, want %v", s, got, want)
		}
	})
}
