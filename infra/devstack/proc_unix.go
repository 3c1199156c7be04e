//go:build unix && !linux

package devstack

import "syscall"

// childSysProcAttr puts a server in its own process group. Only Linux can have the kernel kill a
// child when its parent dies; elsewhere a crashed stack can leave servers for the developer to stop.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// checkXattr is a Linux-only probe; other systems report missing xattrs on the first PutObject.
func checkXattr(dir string) error { return nil }

// inForeground is only answered on Linux; elsewhere SIGINT is always relayed to the child.
func inForeground() bool { return false }
