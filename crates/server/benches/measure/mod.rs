//! What the benches read of this process's own work: CPU time and bytes
//! written, which a shared machine's load moves less than wall time.
#![allow(dead_code)] // each bench uses its own part

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Bytes this process has passed to write(2)/pwrite(2) so far (Linux:
/// `wchar` of /proc/self/io; 0 where it cannot be read).
pub fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}
