//! CPU time of processes from `/proc/PID/stat`: what the servers spent on a phase, divided by
//! its requests, is the cost of a request. Unlike the request rate it hardly depends on what
//! else runs on the machine (other builds share its 2 cores).

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`, 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

/// User + system CPU time of `pid` so far, in clock ticks.
pub fn ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    // After the name: state (0), ppid (1), ..., utime (11), stime (12).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The parent of `pid`.
pub fn parent(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The PostgreSQL server (postmaster) listening on `port`: the `postgres` process whose command
/// line has `-p PORT` (how [`smartlic_store::postgres::PrivateCluster`] starts it).
pub fn postmaster_on(port: u16) -> Option<u32> {
    let port = port.to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_postgres = args.first()?.ends_with(b"postgres");
        let on_port = args.windows(2).any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
        (is_postgres && on_port).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_a_parent() {
        let me = std::process::id();
        let spin: u64 = (0..5_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert!(spin > 0);
        assert!(ticks(me).is_some());
        assert!(parent(me).is_some_and(|p| p != me));
        assert_eq!(ticks(u32::MAX), None);
    }
}
