package devstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/mailroom/mailroom/infra/devstack/seslocal"
)

// startSES runs the local SES v2 endpoint in this process and waits until it answers HTTP.
func (s *Stack) startSES(ctx context.Context) error {
	o := seslocal.Options{Addr: "127.0.0.1:0", Region: s.ep.Region, Logger: s.log}
	if s.o.Persist {
		o.Dir = filepath.Join(s.stateDir, "ses")
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return fmt.Errorf("local SES: %w", err)
		}
	}
	// The server lives until Stop, not until the start-up context ends.
	srv, err := seslocal.Start(context.WithoutCancel(ctx), o)
	if err != nil {
		return fmt.Errorf("local SES: %w", err)
	}
	s.mu.Lock()
	s.ses = srv
	s.mu.Unlock()
	endpoint := srv.URL()
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitReady(ctx, nil, 0, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
	if err != nil {
		return fmt.Errorf("local SES at %s: %w", endpoint, err)
	}
	s.mu.Lock()
	s.ep.SES = endpoint
	s.mu.Unlock()
	return nil
}
