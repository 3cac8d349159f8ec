package config

import (
	"net/netip"
	"testing"
)

// TestPipelineErrors: each bad pipeline key is reported with its line
// (testdata/bad-pipeline.golden; go test -update rewrites it).
func TestPipelineErrors(t *testing.T) { testErrors(t, "bad-pipeline") }

func TestPipelineDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte("providers:\n  hs: {format: holysheep, base_url: 'http://x'}\npipeline:\n  provider: hs\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, r := c.Pipeline.Serve, c.Pipeline.Rules
	if s.MaxQueueBytes != 256<<20 || len(s.FetchAllow) != 0 || *r.ReviewMargin != 0.10 {
		t.Errorf("defaults: max_queue_bytes %d, fetch_allow %v, review_margin %v; want 256MiB, none, 0.10", s.MaxQueueBytes, s.FetchAllow, *r.ReviewMargin)
	}
}

func TestParseFetchAllow(t *testing.T) {
	for _, tc := range []struct {
		in, host, prefix string
		ok               bool
	}{
		{"10.20.0.0/16", "", "10.20.0.0/16", true},
		{"10.20.1.2/16", "", "10.20.0.0/16", true},
		{"127.0.0.1", "", "127.0.0.1/32", true},
		{"::ffff:127.0.0.1", "", "127.0.0.1/32", true},
		{"[::1]", "", "::1/128", true},
		{"fd00::/8", "", "fd00::/8", true},
		{"Images.Internal.", "images.internal", "", true},
		{"*.cdn.internal", "*.cdn.internal", "", true},
		{"", "", "", false},
		{"10.0.0.0/33", "", "", false},
		{"http://images.internal", "", "", false},
		{"images.internal:8080", "", "", false},
		{"*", "", "", false},
		{"a..b", "", "", false},
		{"ünïcode.example", "", "", false},
	} {
		host, prefix, err := ParseFetchAllow(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		want := netip.Prefix{}
		if tc.prefix != "" {
			want = netip.MustParsePrefix(tc.prefix)
		}
		if host != tc.host || prefix != want {
			t.Errorf("%q: got %q %v, want %q %v", tc.in, host, prefix, tc.host, want)
		}
	}
}
