package realpeers

import "syscall"

// procAttr makes the kernel kill a peer when the test binary dies without
// running its cleanups (a panic, a timeout's SIGQUIT, a killed CI run), so
// no server is left holding a port and a data folder.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
