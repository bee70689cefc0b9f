//! Another process's CPU time and context switches, from Linux's `/proc`,
//! for `ferry bench ingest --pid`: read before and after a load, the
//! difference divided by the events accepted is the hub's cost per event —
//! a ratio that holds on a machine shared with other work, unlike a rate.

use std::path::Path;

use anyhow::{Context, bail};

/// CPU time a process has used so far, in clock ticks (see [`ticks_per_second`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    /// Time in user mode (`utime`, field 14 of `/proc/PID/stat`).
    pub user: u64,
    /// Time in kernel mode (`stime`, field 15).
    pub system: u64,
}

/// A snapshot of a process: its CPU time and its threads' context switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU time.
    pub cpu: CpuTicks,
    /// Context switches of all its threads, voluntary (waits) and not (preemptions).
    pub switches: u64,
}

/// Parse the text of `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so the fields are
/// counted from the *last* `)`.
pub fn parse_stat(text: &str) -> anyhow::Result<CpuTicks> {
    let Some(close) = text.rfind(')') else {
        bail!("no `)` closing the command name in {text:?}");
    };
    // After the name: state (field 3), ppid (4), …, utime (14), stime (15).
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let raw = fields
            .get(n - 3)
            .with_context(|| format!("field {n} missing in {text:?}"))?;
        raw.parse()
            .with_context(|| format!("field {n} ({raw:?}) is not a number"))
    };
    Ok(CpuTicks {
        user: field(14)?,
        system: field(15)?,
    })
}

/// The sum of `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` in
/// the text of a `/proc/PID/task/TID/status`.
pub fn parse_switches(status: &str) -> u64 {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k, "voluntary_ctxt_switches" | "nonvoluntary_ctxt_switches")
                .then(|| v.trim().parse::<u64>().ok())?
        })
        .sum()
}

/// Read process `pid`'s usage now.
pub fn read(pid: u32) -> anyhow::Result<Usage> {
    let proc = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(proc.join("stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat (is process {pid} running?)"))?;
    let cpu = parse_stat(&stat)?;
    // A thread that ended since is missed; the hub's threads live as long as it.
    let mut switches = 0;
    for task in std::fs::read_dir(proc.join("task"))
        .with_context(|| format!("cannot list /proc/{pid}/task"))?
        .flatten()
    {
        if let Ok(status) = std::fs::read_to_string(task.path().join("status")) {
            switches += parse_switches(&status);
        }
    }
    Ok(Usage { cpu, switches })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, what `getconf CLK_TCK`
/// prints); 100, Linux's value on every common architecture, when it cannot
/// be read.
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

impl Usage {
    /// What was used between `self` (before) and `after`.
    pub fn until(self, after: Usage) -> Usage {
        Usage {
            cpu: CpuTicks {
                user: after.cpu.user.saturating_sub(self.cpu.user),
                system: after.cpu.system.saturating_sub(self.cpu.system),
            },
            switches: after.switches.saturating_sub(self.switches),
        }
    }
}

/// Microseconds of CPU per event: `ticks` at `hz` ticks per second over `events`.
pub fn micros_per_event(ticks: u64, hz: u64, events: usize) -> f64 {
    if events == 0 || hz == 0 {
        return 0.0;
    }
    ticks as f64 * 1e6 / hz as f64 / events as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line (`cat /proc/self/stat`) with the command name swapped for
    // one holding spaces and parentheses.
    const STAT: &str = "4242 (ferry (dev) x) S 1 4242 4242 0 -1 4194560 2270 0 0 0 \
        731 219 0 0 20 0 6 0 1234567 123456789 3200 18446744073709551615 \
        1 1 0 0 0 0 0 4096 17414 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn parses_utime_and_stime_past_a_tricky_name() {
        let t = parse_stat(STAT).unwrap();
        assert_eq!(
            t,
            CpuTicks {
                user: 731,
                system: 219
            }
        );
    }

    #[test]
    fn a_cut_or_garbled_stat_is_an_error() {
        assert!(parse_stat("4242 (ferry) S 1 2 3").is_err());
        assert!(parse_stat("4242 ferry S").is_err());
        let garbled = STAT.replace(" 731 ", " x ");
        let e = parse_stat(&garbled).unwrap_err().to_string();
        assert!(e.contains("field 14"), "{e}");
    }

    #[test]
    fn sums_both_kinds_of_switches() {
        let status =
            "Name:\tferry\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_switches(status), 127);
        assert_eq!(parse_switches("Name:\tferry\n"), 0);
    }

    #[test]
    fn per_event_cost() {
        // 950 ticks at 100 Hz = 9.5 s over 50,000 events = 190 µs each.
        assert!((micros_per_event(950, 100, 50_000) - 190.0).abs() < 1e-9);
        assert_eq!(micros_per_event(5, 100, 0), 0.0);
        let before = Usage {
            cpu: CpuTicks {
                user: 10,
                system: 5,
            },
            switches: 100,
        };
        let after = Usage {
            cpu: CpuTicks {
                user: 40,
                system: 7,
            },
            switches: 130,
        };
        assert_eq!(
            before.until(after),
            Usage {
                cpu: CpuTicks {
                    user: 30,
                    system: 2
                },
                switches: 30
            }
        );
    }

    #[test]
    fn reads_this_process() {
        let u = read(std::process::id()).unwrap();
        // The test's own threads have been scheduled in and out by now.
        assert!(u.switches > 0, "{u:?}");
        assert!(ticks_per_second() > 0);
        assert!(read(u32::MAX).is_err());
    }
}
