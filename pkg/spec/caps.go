package spec

import "strings"

// capabilities are Linux capability numbers, from linux/capability.h.
var capabilities = map[string]int{
	"cap_chown": 0, "cap_dac_override": 1, "cap_dac_read_search": 2, "cap_fowner": 3,
	"cap_fsetid": 4, "cap_kill": 5, "cap_setgid": 6, "cap_setuid": 7, "cap_setpcap": 8,
	"cap_linux_immutable": 9, "cap_net_bind_service": 10, "cap_net_broadcast": 11,
	"cap_net_admin": 12, "cap_net_raw": 13, "cap_ipc_lock": 14, "cap_ipc_owner": 15,
	"cap_sys_module": 16, "cap_sys_rawio": 17, "cap_sys_chroot": 18, "cap_sys_ptrace": 19,
	"cap_sys_pacct": 20, "cap_sys_admin": 21, "cap_sys_boot": 22, "cap_sys_nice": 23,
	"cap_sys_resource": 24, "cap_sys_time": 25, "cap_sys_tty_config": 26, "cap_mknod": 27,
	"cap_lease": 28, "cap_audit_write": 29, "cap_audit_control": 30, "cap_setfcap": 31,
	"cap_mac_override": 32, "cap_mac_admin": 33, "cap_syslog": 34, "cap_wake_alarm": 35,
	"cap_block_suspend": 36, "cap_audit_read": 37, "cap_perfmon": 38, "cap_bpf": 39,
	"cap_checkpoint_restore": 40,
}

// Capability returns the number of a capability named like
// cap_net_bind_service (any case, the cap_ prefix optional).
func Capability(name string) (int, bool) {
	n := strings.ToLower(name)
	if !strings.HasPrefix(n, "cap_") {
		n = "cap_" + n
	}
	c, ok := capabilities[n]
	return c, ok
}
