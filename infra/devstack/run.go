package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Run starts a stack, runs argv with the stack's variables added to this process's environment,
// stops the stack and returns the command's exit code (128+n when a signal n ended it). `make test`
// uses it as `mailroom stack run -- go test ./...`, so every test package shares one stack.
//
// SIGTERM and SIGHUP are relayed to the command, and so is SIGINT unless Mailroom is in the
// foreground of a terminal, where the command, sharing its process group, got Ctrl-C already.
// Run itself keeps going until the command has exited, so the servers are always stopped.
//
// err reports a stack that would not start (exit code 1), a command that could not start (127),
// or a stack that would not stop cleanly (with the command's own exit code).
func Run(ctx context.Context, o Options, argv []string) (exitCode int, err error) {
	if len(argv) == 0 {
		return 2, errors.New("run: no command")
	}
	// Catch signals before the servers start, so that Ctrl-C during start-up still stops them.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-startCtx.Done():
		}
	}()
	s, err := Start(startCtx, o)
	if err != nil {
		return 1, err
	}
	cancel()
	defer func() {
		if stopErr := s.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop local stack: %w", stopErr))
		}
	}()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), s.Env()...) // later entries win
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("run %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGINT && inForeground() {
				continue
			}
			cmd.Process.Signal(sig)
		case <-ctx.Done():
			cmd.Process.Signal(syscall.SIGTERM)
			ctx = context.Background() // signal once, then wait for the command
		case err := <-done:
			return commandExit(cmd, err)
		}
	}
}

func commandExit(cmd *exec.Cmd, err error) (int, error) {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 1, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return cmd.ProcessState.ExitCode(), nil
}
