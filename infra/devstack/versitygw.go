package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// findVersityGW locates the versitygw binary that `make tools` builds from tools/go.mod.
func findVersityGW(repo string) (string, error) {
	p := os.Getenv("MAILROOM_VERSITYGW")
	if p == "" {
		if repo == "" {
			return "", errors.New("versitygw: set MAILROOM_VERSITYGW or run inside the Mailroom repository")
		}
		p = filepath.Join(repo, "bin", "versitygw")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not found at %s: run `make tools`", p)
	}
	return p, nil
}

// startS3 runs versitygw's POSIX backend on a free loopback port and waits until it answers
// ListBuckets. The port is found before versitygw binds it, so a lost race is retried; the
// stack's own credentials keep a stranger's server on that port from passing the check.
func (s *Stack) startS3(ctx context.Context) error {
	bin, err := findVersityGW(s.repo)
	if err != nil {
		return err
	}
	buckets := filepath.Join(s.s3Dir, "buckets")
	versions := filepath.Join(s.s3Dir, "versions")
	for _, d := range []string{buckets, versions} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("versitygw: %w", err)
		}
	}
	if err := checkXattr(buckets); err != nil {
		return fmt.Errorf("versitygw: %w", err)
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		// The versioning directory enables bucket versioning and Object Lock.
		argv := []string{bin, "--port", addr, "--access", s.ep.AccessKey, "--secret", s.ep.SecretKey,
			// Keep-alive as S3 has it: without it every request pays a new TCP connection, which
			// distorts the per-message cost the benchmarks measure.
			"--region", s.ep.Region, "--quiet", "--keep-alive", "posix", "--versioning-dir", versions, buckets}
		p, err := s.spawner.startProcess("versitygw", filepath.Join(s.stateDir, "logs", "s3.log"), s.stateDir, argv)
		if err != nil {
			return err
		}
		s.setProcess(&s.s3, p)
		endpoint := "http://" + addr
		c := s3.New(s3.Options{
			Region:       s.ep.Region,
			BaseEndpoint: &endpoint,
			UsePathStyle: true,
			Credentials:  s.credentials(),
			Retryer:      noRetry(),
		})
		// A 403 may come from another stack's server on the port we lost; ours then exits
		// within moments, and the attempt is retried.
		err = waitReady(ctx, p, 2*time.Second, func(ctx context.Context) error {
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		})
		if err == nil {
			s.mu.Lock()
			s.ep.S3 = endpoint
			s.mu.Unlock()
			return nil
		}
		if attempt == attempts || !p.exited() || !strings.Contains(logTail(p.logPath, 5), "address already in use") {
			return err
		}
		s.log.Debug("versitygw lost its port to another process; retrying", "addr", addr)
	}
}
