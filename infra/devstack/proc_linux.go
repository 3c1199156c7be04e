package devstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// childSysProcAttr puts a server in its own process group and has the kernel kill it if Mailroom
// dies without stopping it, so no server outlives the stack that started it.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// checkXattr fails early when dir cannot hold user extended attributes, where versitygw keeps
// object metadata; otherwise the stack would start and every PutObject would fail.
func checkXattr(dir string) error {
	probe := filepath.Join(dir, ".xattr-probe")
	f, err := os.Create(probe)
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(probe)
	err = syscall.Setxattr(probe, "user.mailroom", []byte("1"), 0)
	if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) {
		return fmt.Errorf("%s does not support extended attributes, which versitygw needs for object metadata: "+
			"point TMPDIR (tests) or the state directory (dev) at a disk-backed filesystem", dir)
	}
	return err
}

// inForeground reports whether Mailroom's process group is the foreground group of its terminal.
// Then a Ctrl-C has already reached a child that shares the group, and relaying SIGINT would
// deliver it twice (many programs take a second SIGINT as "stop now, skip the cleanup").
func inForeground() bool {
	for fd := uintptr(0); fd <= 2; fd++ {
		var pgrp int32
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
		if errno == 0 {
			return int(pgrp) == syscall.Getpgrp()
		}
	}
	return false
}
