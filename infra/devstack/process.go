package devstack

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// stopTimeout is how long a server gets to exit after SIGTERM before its group is killed.
const stopTimeout = 5 * time.Second

// process is one server running as a child in its own process group.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // valid after done
	cited   atomic.Bool   // an error points at logPath, so a failed start keeps it
}

// spawner forks every child from one locked OS thread that lives as long as the stack. Linux
// delivers Pdeathsig when the thread that forked the child exits, not the whole process, and a
// thread ends whenever a goroutine locked to it returns without unlocking; forking from a
// dedicated thread keeps the servers alive exactly as long as the stack.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for r := range s.reqs {
			r.errc <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd, errc}
	return <-errc
}

// close ends the spawner's thread; call it only after every child has exited.
func (s *spawner) close() { close(s.reqs) }

// startProcess starts argv with its output appended to logPath (truncated first), in a process
// group of its own so that a terminal's Ctrl-C reaches Mailroom, which stops the servers in order.
func (s *spawner) startProcess(name, logPath, dir string, argv []string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childSysProcAttr()
	fmt.Fprintf(logf, "# %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	if err := s.start(cmd); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes how the process ended, with the end of its log, for a startup failure.
func (p *process) exitError() error {
	p.cited.Store(true)
	return fmt.Errorf("%s exited before it was ready (%v); see %s:\n%s",
		p.name, p.waitErr, p.logPath, logTail(p.logPath, 15))
}

// stop sends SIGTERM to the process group and SIGKILL if it has not exited after timeout.
func (p *process) stop(timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.pid() // the child leads its group
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: SIGTERM process group %d: %w", p.name, pgid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: SIGKILL process group %d: %w", p.name, pgid, err)
	}
	<-p.done
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v and was killed", p.name, pgid, timeout)
}

// alive reports whether a process with this pid exists (EPERM: it exists but is not ours).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freePort asks the kernel for a free loopback port. Another process may take it before the
// server binds it; callers retry on "address already in use".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last n lines of a log file, indented, for error messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var sb strings.Builder
	for i, l := range lines {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString("    ")
		sb.Write(l)
	}
	return sb.String()
}
