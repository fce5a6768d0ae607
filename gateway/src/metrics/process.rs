//! The standard `process_*` metrics (CPU time, memory, file descriptors, threads,
//! start time), read from Linux's `/proc` at each scrape.
//!
//! The guarantee: the names, types and units are those every Prometheus client
//! library exports (client_golang's process collector), so stock dashboards work; a
//! value that cannot be read (another OS, a restricted `/proc`) is left out, never
//! guessed. `prometheus-client` has no process collector of its own, and the one
//! well-kept crate (`metrics-process`) feeds the `metrics` facade, not this registry:
//! the few files are read here.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc` times: `USER_HZ`, which Linux fixes at 100 for
/// user space whatever the kernel's own tick (client_golang's procfs assumes the same).
const USER_HZ: f64 = 100.0;

/// Exports the `process_*` family of the process it runs in.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessCollector;

/// What one scrape read about the process.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    virtual_memory_bytes: Option<u64>,
    resident_memory_bytes: Option<u64>,
    threads: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl Sample {
    fn read() -> Self {
        let read = |path| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat").and_then(|s| Stat::parse(&s));
        let boot = read("/proc/stat").and_then(|s| boot_time(&s));
        let status = read("/proc/self/status").unwrap_or_default();
        Self {
            cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / USER_HZ),
            start_time_seconds: stat
                .zip(boot)
                .map(|(s, boot)| boot as f64 + s.starttime as f64 / USER_HZ),
            virtual_memory_bytes: stat.map(|s| s.vsize),
            resident_memory_bytes: status_kib(&status, "VmRSS:").map(|kib| kib * 1024),
            threads: stat.map(|s| s.threads),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| dir.count() as u64),
            max_fds: read("/proc/self/limits").and_then(|s| max_open_files(&s)),
        }
    }
}

/// The fields of `/proc/self/stat` that are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    threads: u64,
    starttime: u64,
    vsize: u64,
}

impl Stat {
    /// Parses `/proc/<pid>/stat` (proc(5)); the command name may hold spaces and
    /// parentheses, so fields are counted from its last `)`.
    fn parse(text: &str) -> Option<Self> {
        let (_, rest) = text.rsplit_once(')')?;
        // Fields from the third (state) on; field N of proc(5) is at N - 3.
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Self {
            utime: field(14)?,
            stime: field(15)?,
            threads: field(20)?,
            starttime: field(22)?,
            vsize: field(23)?,
        })
    }
}

/// The boot time (seconds since the epoch), from `/proc/stat`'s `btime` line.
fn boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// A `Key:   N kB` line of `/proc/self/status`.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft limit on open files, from `/proc/self/limits` (`None` when unlimited).
fn max_open_files(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let s = Sample::read();
        if let Some(v) = s.cpu_seconds {
            let c = ConstCounter::new(v);
            let help = "Total user and system CPU time spent in seconds.";
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                c.metric_type(),
            )?)?;
        }
        if let Some(v) = s.start_time_seconds {
            let help = "Start time of the process since unix epoch in seconds.";
            gauge(&mut encoder, "process_start_time_seconds", help, v)?;
        }
        for (name, help, value) in [
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_memory_bytes,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_memory_bytes,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                s.threads,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                s.max_fds,
            ),
        ] {
            if let Some(v) = value {
                gauge(&mut encoder, name, help, v)?;
            }
        }
        Ok(())
    }
}

fn gauge<N>(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: N) -> fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with spaces and a `)` of its own.
        let text = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 7 0 1234 567890 321 18446744073709551615";
        assert_eq!(
            Stat::parse(text),
            Some(Stat {
                utime: 250,
                stime: 50,
                threads: 7,
                starttime: 1234,
                vsize: 567_890,
            })
        );
        assert_eq!(Stat::parse("4242 (cut short) S 1"), None);
    }

    #[test]
    fn limits_status_and_boot_time_are_read_by_key() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
        let status = "Name:\tgateway\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\nThreads:\t5\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(2048));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_as_alive() {
        let s = Sample::read();
        assert!(s.threads.is_some_and(|n| n >= 1), "{s:?}");
        assert!(s.resident_memory_bytes.is_some_and(|b| b > 0), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3), "{s:?}");
        assert!(
            s.max_fds.is_none_or(|m| m >= s.open_fds.unwrap_or(0)),
            "{s:?}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        assert!(
            s.start_time_seconds
                .is_some_and(|t| t > 1e9 && t <= now + 1.0),
            "{s:?}"
        );
    }
}
