package devstack

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// StateFile is the name of the file in the state directory that describes the running stack, so
// that other commands (`mailroom send`, `mailroom env`) can find it.
const StateFile = "stack.json"

// DefaultStateDir is where `make dev` keeps its stack: the repository's .mailroom directory.
func DefaultStateDir() (string, error) {
	root, err := FindRepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".mailroom"), nil
}

type stateFile struct {
	Endpoints Endpoints      `json:"endpoints"`
	PIDs      map[string]int `json:"pids"`
	Started   time.Time      `json:"started"`
}

func (s *Stack) statePath() string { return filepath.Join(s.stateDir, StateFile) }

func (s *Stack) writeState() error {
	s.mu.Lock()
	st := stateFile{
		Endpoints: s.ep,
		// SES runs inside this process, so this process must be alive too.
		PIDs:    map[string]int{"dynamodb": s.ddb.pid(), "s3": s.s3.pid(), "mailroom": os.Getpid()},
		Started: s.started,
	}
	s.mu.Unlock()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.statePath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", StateFile, err)
	}
	return os.Rename(tmp, s.statePath())
}

// Running reads the stack.json in stateDir and reports the stack's endpoints if every process it
// names is alive and the DynamoDB and S3 endpoints accept connections (a pid alone may have been
// reused since).
func Running(stateDir string) (Endpoints, bool) {
	b, err := os.ReadFile(filepath.Join(stateDir, StateFile))
	if err != nil {
		return Endpoints{}, false
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil || len(st.PIDs) == 0 {
		return Endpoints{}, false
	}
	for _, pid := range st.PIDs {
		if !alive(pid) {
			return Endpoints{}, false
		}
	}
	for _, ep := range []string{st.Endpoints.DynamoDB, st.Endpoints.S3} {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" {
			return Endpoints{}, false
		}
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			return Endpoints{}, false
		}
		conn.Close()
	}
	return st.Endpoints, true
}
