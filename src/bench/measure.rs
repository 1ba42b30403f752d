//! The instruments: latency samples, CPU time per thread group, resident memory, and what the
//! machine is. Linux only, read from /proc, so nothing but std is needed.

use super::report::Machine;
use std::time::Duration;

/// Latencies of one kind of request.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    durations: Vec<Duration>,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.durations.push(d);
    }

    pub fn extend(&mut self, other: Samples) {
        self.durations.extend(other.durations);
    }

    pub fn len(&self) -> usize {
        self.durations.len()
    }

    /// The nearest-rank percentile in milliseconds (`q` from 0 to 1); NaN without samples.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.durations.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.durations.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        ms(sorted[rank - 1])
    }

    pub fn max_ms(&self) -> f64 {
        self.durations.iter().max().map_or(f64::NAN, |d| ms(*d))
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The name the load generator's threads carry, so their CPU time can be told apart from the
/// service's (at most 15 bytes: Linux truncates thread names there).
pub const CLIENT_THREAD: &str = "bench-client";

/// The unit of the CPU times in /proc: USER_HZ, which Linux fixes at 100 for userspace on
/// every architecture, whatever the kernel's own tick rate.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system) used so far by the whole process, and by the load generator's
/// threads within it.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub process: Duration,
    pub client: Duration,
}

impl Cpu {
    pub fn now() -> Cpu {
        let process = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| stat_ticks(&s))
            .unwrap_or(0);
        let mut client = 0;
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                if comm.trim_end() == CLIENT_THREAD {
                    client += std::fs::read_to_string(task.path().join("stat"))
                        .ok()
                        .and_then(|s| stat_ticks(&s))
                        .unwrap_or(0);
                }
            }
        }
        Cpu {
            process: ticks(process),
            client: ticks(client),
        }
    }

    /// What was used between `earlier` and now: `(process, client threads)`.
    pub fn since(earlier: Cpu) -> Cpu {
        let now = Cpu::now();
        Cpu {
            process: now.process.saturating_sub(earlier.process),
            client: now.client.saturating_sub(earlier.client),
        }
    }

    /// The process less the load generator: the service, its database driver and its BBB client.
    pub fn service(&self) -> Duration {
        self.process.saturating_sub(self.client)
    }
}

fn ticks(n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / TICKS_PER_SECOND)
}

/// utime + stime of a `stat` line. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted from the last `)`: utime and stime are fields 14 and 15.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn status_kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The highest resident set size since the process started or since [`reset_peak_rss`], in MiB.
pub fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:").map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Starts a new peak at the current resident size (`5` to clear_refs resets VmHWM), so each
/// section reports its own peak. Where the kernel refuses, peaks stay cumulative, which only
/// overstates a section.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        memory_gib: memory_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_default(),
        build: if cfg!(debug_assertions) {
            "debug (not representative: use --release)"
        } else {
            "release"
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for n in 1..=100 {
            s.push(Duration::from_millis(n));
        }
        assert_eq!(s.percentile_ms(0.5), 50.0);
        assert_eq!(s.percentile_ms(0.99), 99.0);
        assert_eq!(s.percentile_ms(1.0), 100.0);
        assert_eq!(s.max_ms(), 100.0);
        assert!(Samples::default().percentile_ms(0.5).is_nan());
    }

    #[test]
    fn stat_lines_with_odd_command_names() {
        let line = "42 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(stat_ticks(line), Some(300));
        assert_eq!(stat_ticks("garbage"), None);
    }

    #[test]
    fn this_process_is_measurable() {
        let cpu = Cpu::now();
        assert!(cpu.process >= cpu.client);
        assert!(peak_rss_mib() > 0.0);
    }
}
