package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

// Start listens on proxy.listen and proxy.admin_listen (listenAddr and
// adminAddr override them when non-empty, e.g. 127.0.0.1:0 in tests) and
// serves until Stop. It returns the bound addresses.
func (p *Proxy) Start(listenAddr, adminAddr string) (string, string, error) {
	if listenAddr == "" {
		listenAddr = p.cfg.Proxy.Listen.String()
	}
	if adminAddr == "" {
		adminAddr = p.cfg.Proxy.AdminListen.String()
	}
	if !isLoopback(adminAddr) && p.adminToken == "" {
		return "", "", fmt.Errorf("proxy.admin_listen %s is not a loopback address: refusing to serve the admin API (pprof, canary control) there without a token in $%s",
			adminAddr, p.cfg.Proxy.Canary.AdminTokenEnv)
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return "", "", fmt.Errorf("proxy.listen: %w", err)
	}
	aln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		ln.Close()
		return "", "", fmt.Errorf("proxy.admin_listen: %w", err)
	}
	errLog := log.New(scrubWriter{p}, "", 0)
	p.srv = &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 1 << 20, ErrorLog: errLog}
	p.admin = &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	go p.srv.Serve(ln)
	go p.admin.Serve(aln)
	p.sweepStop = make(chan struct{})
	go p.sweeper()
	if p.ctl != nil {
		go p.ctl.run()
	}
	p.log.Info("proxy listening", "listen", ln.Addr().String(), "admin", aln.Addr().String(), "mode", p.cfg.Proxy.Mode,
		"primary", p.primaryName, "candidate", p.candidateName, "run_dir", p.rec.Dir())
	return ln.Addr().String(), aln.Addr().String(), nil
}

// Stop shuts down in order: stop accepting and finish in-flight client
// requests, drain the mirror queue, stop the admin listener; all within
// proxy.shutdown_timeout. The caller then closes the recorder, so that
// nothing already answered is missing from the run directory.
func (p *Proxy) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Proxy.ShutdownTimeout.D())
	defer cancel()
	p.shuttingDown.Store(true)
	var errs []error
	if err := p.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("client listener: %w", err))
	}
	if err := p.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	close(p.sweepStop)
	if p.ctl != nil {
		p.ctl.Stop()
	}
	actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer acancel()
	p.admin.Shutdown(actx)
	cov := p.rec.Coverage()
	p.log.Info("proxy stopped", "seen", cov.Seen, "classify", cov.Classify, "mirrored", cov.Mirrored, "skipped", cov.Skipped)
	p.rec.Event("shutdown", "proxy stopped", map[string]any{"errors": fmt.Sprint(errors.Join(errs...))})
	return errors.Join(errs...)
}

func (p *Proxy) sweeper() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			p.sweepDedupe(now)
			p.pairs.sweep(now.Add(-p.mirrorTimeout - time.Minute))
		case <-p.sweepStop:
			return
		}
	}
}

// isLoopback reports whether a listen address binds to loopback only
// ("localhost", 127.0.0.0/8, ::1); an empty host binds every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scrubWriter sends net/http's server errors to the log without secrets.
type scrubWriter struct{ p *Proxy }

func (s scrubWriter) Write(b []byte) (int, error) {
	s.p.log.Warn(s.p.scrub.Replace(string(bytes.TrimSpace(b))), "component", "http")
	return len(b), nil
}

// gunzip inflates a gzip body for decoding; on error it returns nil (the
// answer then counts as undecodable, never as right).
func gunzip(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil
	}
	return out
}
