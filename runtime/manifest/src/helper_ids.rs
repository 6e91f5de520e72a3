//! The numbers of the kernel helpers ppis programs call (`enum bpf_func_id` in the kernel's
//! UAPI), in one place for the code generator that emits them and the bundle loader that
//! checks and prices them without depending on the compiler.

pub const MAP_LOOKUP_ELEM: i32 = 1;
pub const MAP_UPDATE_ELEM: i32 = 2;
pub const MAP_DELETE_ELEM: i32 = 3;
pub const KTIME_GET_NS: i32 = 5;
pub const GET_SMP_PROCESSOR_ID: i32 = 8;
pub const GET_CURRENT_PID_TGID: i32 = 14;
pub const GET_CURRENT_UID_GID: i32 = 15;
pub const GET_CURRENT_COMM: i32 = 16;
/// `ustack`/`kstack` keys: writes only into a stack-trace map.
pub const GET_STACKID: i32 = 27;
/// `cgroup`: the current task's cgroup v2 id.
pub const GET_CURRENT_CGROUP_ID: i32 = 80;
/// `buf(ptr, N)`: copies N raw bytes into a stack buffer.
pub const PROBE_READ_USER: i32 = 112;
pub const PROBE_READ_KERNEL: i32 = 113;
pub const PROBE_READ_USER_STR: i32 = 114;
pub const PROBE_READ_KERNEL_STR: i32 = 115;
/// `emit`/`print`: copies a stack record into the ring buffer.
pub const RINGBUF_OUTPUT: i32 = 130;

/// Name of a helper as bpftool prints it, for the ids ppis emits.
pub fn name(id: i32) -> Option<&'static str> {
    Some(match id {
        MAP_LOOKUP_ELEM => "bpf_map_lookup_elem",
        MAP_UPDATE_ELEM => "bpf_map_update_elem",
        MAP_DELETE_ELEM => "bpf_map_delete_elem",
        KTIME_GET_NS => "bpf_ktime_get_ns",
        GET_SMP_PROCESSOR_ID => "bpf_get_smp_processor_id",
        GET_CURRENT_PID_TGID => "bpf_get_current_pid_tgid",
        GET_CURRENT_UID_GID => "bpf_get_current_uid_gid",
        GET_CURRENT_COMM => "bpf_get_current_comm",
        GET_STACKID => "bpf_get_stackid",
        GET_CURRENT_CGROUP_ID => "bpf_get_current_cgroup_id",
        PROBE_READ_USER => "bpf_probe_read_user",
        PROBE_READ_KERNEL => "bpf_probe_read_kernel",
        PROBE_READ_USER_STR => "bpf_probe_read_user_str",
        PROBE_READ_KERNEL_STR => "bpf_probe_read_kernel_str",
        RINGBUF_OUTPUT => "bpf_ringbuf_output",
        _ => return None,
    })
}
