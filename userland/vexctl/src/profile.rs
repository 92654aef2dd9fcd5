//! `vexctl profile`: the eBPF profiler's command line, tables and JSON.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use tabled::settings::Style;
use tabled::{Table, Tabled};
use vexfs_profiler::{
    fold, write_folded, write_svg, Op, OpFigures, Options, ProbeChoice, Profiler, ProfilerStorage,
};

/// Arguments of `vexctl profile`.
#[derive(Args)]
pub struct ProfileArgs {
    /// How long to profile (e.g. 10s, 500ms, 2m); Ctrl-C ends it earlier.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Length of each reporting interval.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Only operations of this process id.
    #[arg(long, value_name = "P")]
    pid: Option<u32>,
    /// Only operations on the VexFS mounted at (or containing) this path.
    #[arg(long, value_name = "DIR")]
    mount: Option<PathBuf>,
    /// Operations to measure, comma-separated
    /// (lookup,create,unlink,read,write,fsync,insert,delete,search,simd).
    #[arg(long, value_delimiter = ',', value_name = "OPS")]
    ops: Option<Vec<Op>>,
    /// Write a flame graph (SVG) of kernel stacks sampled inside VexFS
    /// operations.
    #[arg(long, value_name = "SVG")]
    flamegraph: Option<PathBuf>,
    /// Write the sampled stacks as folded text (`frame;frame;... count`).
    #[arg(long, value_name = "TXT")]
    folded: Option<PathBuf>,
    /// Sampling frequency of the flame graph, in Hz (cpu-clock event).
    #[arg(long, default_value_t = 999, value_name = "HZ",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    frequency: u64,
    /// Print one JSON object per interval (and one for the total).
    #[arg(long)]
    json: bool,
    /// How to reach the probe points: auto (vexfs.ko's tracepoints for file
    /// operations and fsession for the rest where vexfs.ko allows it, else
    /// kprobes), fsession (for every class) or kprobe. Default:
    /// $VEXFS_PROFILE_PROBES, else auto. For tests and comparisons.
    #[arg(long, hide = true, value_name = "auto|fsession|kprobe")]
    probes: Option<ProbeChoice>,
}

/// Parses `500ms`, `10s`, `2m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 10s or 500ms"))?;
    let scale = match unit {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{s}' (use ms, s, m or h)"
            ))
        }
    };
    let secs = value * scale;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("'{s}' must be longer than zero"));
    }
    // A year is longer than anyone profiles; beyond it, deadlines overflow.
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| d.as_secs() <= 366 * 24 * 3600)
        .ok_or_else(|| format!("'{s}' is too long (at most a year)"))
}

/// One operation's figures as printed (JSON field names are the schema).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct OpReport {
    op: &'static str,
    count: u64,
    ops_per_sec: f64,
    min_ns: Option<u64>,
    p50_ns: Option<u64>,
    p95_ns: Option<u64>,
    p99_ns: Option<u64>,
    p999_ns: Option<u64>,
    max_ns: Option<u64>,
    mean_ns: Option<u64>,
    entry_stack_bytes: Option<u32>,
    max_stack_bytes: Option<u32>,
}

impl OpReport {
    fn new(op: Op, fig: &OpFigures, seconds: f64) -> Self {
        let l = &fig.latencies;
        let some = |v: u64| (l.count > 0).then_some(v);
        let stack = |v: u32| (l.count > 0).then_some(v);
        OpReport {
            op: op.name(),
            count: l.count,
            ops_per_sec: if seconds > 0.0 {
                l.count as f64 / seconds
            } else {
                0.0
            },
            min_ns: some(l.min_ns),
            p50_ns: l.quantile_ns(0.50),
            p95_ns: l.quantile_ns(0.95),
            p99_ns: l.quantile_ns(0.99),
            p999_ns: l.quantile_ns(0.999),
            max_ns: some(l.max_ns),
            mean_ns: l.mean_ns(),
            entry_stack_bytes: stack(fig.entry_stack),
            max_stack_bytes: stack(fig.max_stack),
        }
    }
}

/// One interval (or the whole run, `kind: "total"`).
#[derive(Serialize, Debug)]
pub struct IntervalReport {
    kind: &'static str,
    /// How the operations are reached: `"raw_tp"`, `"fsession"`,
    /// `"raw_tp+fsession"` or `"kprobe"`.
    probes: &'static str,
    index: usize,
    elapsed_s: f64,
    duration_s: f64,
    ops: Vec<OpReport>,
}

#[derive(Tabled)]
struct Row {
    op: &'static str,
    count: u64,
    #[tabled(rename = "ops/s")]
    ops_per_sec: String,
    p50: String,
    p95: String,
    p99: String,
    #[tabled(rename = "p99.9")]
    p999: String,
    max: String,
    #[tabled(rename = "stack@entry")]
    entry_stack: String,
    #[tabled(rename = "stack max")]
    max_stack: String,
}

/// Latency with a unit: `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn human_ns(ns: Option<u64>) -> String {
    let Some(ns) = ns else { return "-".into() };
    let v = ns as f64;
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", v / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", v / 1e6),
        _ => format!("{:.2} s", v / 1e9),
    }
}

impl IntervalReport {
    pub fn table(&self) -> String {
        let rows = self.ops.iter().map(|o| Row {
            op: o.op,
            count: o.count,
            ops_per_sec: format!("{:.1}", o.ops_per_sec),
            p50: human_ns(o.p50_ns),
            p95: human_ns(o.p95_ns),
            p99: human_ns(o.p99_ns),
            p999: human_ns(o.p999_ns),
            max: human_ns(o.max_ns),
            entry_stack: o.entry_stack_bytes.map_or("-".into(), |b| format!("{b} B")),
            max_stack: o.max_stack_bytes.map_or("-".into(), |b| format!("{b} B")),
        });
        let title = match self.kind {
            "total" => format!("total over {:.1} s", self.duration_s),
            _ => format!(
                "interval {} ({:.1}-{:.1} s)",
                self.index,
                self.elapsed_s - self.duration_s,
                self.elapsed_s
            ),
        };
        format!("{title}\n{}", Table::new(rows).with(Style::sharp()))
    }
}

fn report(
    kind: &'static str,
    probes: &'static str,
    index: usize,
    elapsed: f64,
    seconds: f64,
    figs: &[(Op, OpFigures)],
) -> IntervalReport {
    IntervalReport {
        kind,
        probes,
        index,
        elapsed_s: elapsed,
        duration_s: seconds,
        ops: figs
            .iter()
            .map(|(op, f)| OpReport::new(*op, f, seconds))
            .collect(),
    }
}

/// Creates (truncates) an output file, if one was asked for.
fn create_output<'a>(
    path: Option<&'a Path>,
    what: &str,
) -> Result<Option<(&'a Path, BufWriter<File>)>> {
    path.map(|p| {
        let f = File::create(p).with_context(|| format!("creating {what} {}", p.display()))?;
        Ok((p, BufWriter::new(f)))
    })
    .transpose()
}

/// `pid` must be a running process's id (its thread group id: the BPF
/// filter compares thread group ids, in the initial pid namespace).
fn check_process(pid: u32) -> Result<()> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|_| anyhow::anyhow!("--pid {pid}: no such process"))?;
    let tgid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse::<u32>().ok());
    match tgid {
        Some(t) if t != pid => {
            bail!("--pid {pid} is a thread of process {t}: give the process id {t}")
        }
        _ => Ok(()),
    }
}

/// Runs `vexctl profile`.
pub fn run(args: ProfileArgs) -> Result<()> {
    if args.interval > args.duration {
        bail!(
            "--interval ({:?}) is longer than --duration ({:?})",
            args.interval,
            args.duration
        );
    }
    let sampling = args.flamegraph.is_some() || args.folded.is_some();
    let probes = match args.probes {
        Some(p) => p,
        None => ProbeChoice::from_env().map_err(anyhow::Error::msg)?,
    };
    let options = Options {
        ops: args.ops.clone().unwrap_or_else(|| Op::all().collect()),
        pid: args.pid,
        mount: args.mount.clone(),
        sample_hz: sampling.then_some(args.frequency),
        probes,
    };
    if let Some(pid) = args.pid {
        check_process(pid)?;
    }
    // Before any output file is touched: a refused run must not truncate
    // an earlier flame graph.
    vexfs_profiler::check_privileges()?;
    // Create the output files now: a bad path must fail before profiling,
    // not after it.
    let mut folded_out = create_output(args.folded.as_deref(), "folded stacks")?;
    let mut svg_out = create_output(args.flamegraph.as_deref(), "flame graph")?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;

    let mut storage = ProfilerStorage::default();
    let mut profiler = Profiler::start(&mut storage, &options)?;
    let mechanism = profiler.mechanism().name();
    let names: Vec<&str> = profiler.ops().iter().map(|o| o.name()).collect();
    eprintln!("vexctl profile: probes: {}", profiler.mechanism());
    eprintln!(
        "vexctl profile: attached {} {mechanism} probes (ops: {}){}; {:?} in {:?} intervals",
        profiler.attached() - profiler.sampling_cpus(),
        names.join(","),
        if sampling {
            format!(
                ", sampling at {} Hz on {} CPUs",
                args.frequency,
                profiler.sampling_cpus()
            )
        } else {
            String::new()
        },
        args.duration,
        args.interval,
    );

    // A blank line after each table separates the intervals.
    let emit = |r: &IntervalReport| crate::print(args.json, r, |r| format!("{}\n", r.table()));
    let start = Instant::now();
    let end = start
        .checked_add(args.duration)
        .context("--duration is too long")?;
    let mut totals: Vec<(Op, OpFigures)> = profiler
        .ops()
        .iter()
        .map(|&op| (op, OpFigures::default()))
        .collect();
    let mut last = start;
    let mut index = 0;
    loop {
        let boundary = (last + args.interval).min(end);
        while Instant::now() < boundary && !stop.load(Ordering::SeqCst) {
            std::thread::sleep((boundary - Instant::now()).min(Duration::from_millis(50)));
        }
        let now = Instant::now();
        let last_one = now >= end || stop.load(Ordering::SeqCst);
        let figs = if last_one {
            profiler.last_interval()
        } else {
            profiler.interval()
        };
        index += 1;
        for ((_, total), (_, fig)) in totals.iter_mut().zip(&figs) {
            total.merge(fig);
        }
        let secs = (now - last).as_secs_f64();
        emit(&report(
            "interval",
            mechanism,
            index,
            (now - start).as_secs_f64(),
            secs,
            &figs,
        ))?;
        last = now;
        if last_one {
            break;
        }
    }
    let elapsed = (last - start).as_secs_f64();
    emit(&report(
        "total", mechanism, index, elapsed, elapsed, &totals,
    ))?;

    if sampling {
        let folded = fold(&profiler.samples()?, profiler.symbols());
        if let Some((path, w)) = folded_out.as_mut() {
            write_folded(&folded, w)
                .and_then(|()| w.flush())
                .with_context(|| format!("writing folded stacks {}", path.display()))?;
        }
        if let Some((path, w)) = svg_out.as_mut() {
            let title = format!(
                "VexFS kernel stacks, {} Hz, {:.1} s",
                args.frequency, elapsed
            );
            write_svg(&folded, &title, &mut *w)?;
            w.flush()
                .with_context(|| format!("writing flame graph {}", path.display()))?;
        }
        let n: u64 = folded.values().sum();
        eprintln!("vexctl profile: {n} stack samples inside VexFS operations");
    }
    let (dropped, missed) = (profiler.dropped(), profiler.missed());
    drop(profiler);
    if dropped > 0 {
        eprintln!("vexctl profile: {dropped} events could not be recorded");
    }
    if missed > 0 {
        eprintln!(
            "vexctl profile: {missed} operations not counted: the kernel dropped their probe \
             hits ({})",
            if mechanism == "kprobe" {
                "more calls in flight than kretprobe instances, or probe recursion"
            } else {
                "a probe program already running on that CPU"
            }
        );
    }
    eprintln!("vexctl profile: detached");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vexfs_profiler::Latencies;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s")
            .unwrap_err()
            .contains("longer than zero"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("100000000000000000000h")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_duration("inf").is_err());
    }

    #[test]
    fn latencies_print_with_units() {
        assert_eq!(human_ns(Some(850)), "850 ns");
        assert_eq!(human_ns(Some(12_345)), "12.3 µs");
        assert_eq!(human_ns(Some(4_560_000)), "4.56 ms");
        assert_eq!(human_ns(Some(1_230_000_000)), "1.23 s");
        assert_eq!(human_ns(None), "-");
    }

    #[test]
    fn reports_have_the_documented_fields_and_nulls_when_idle() {
        let search: Op = "search".parse().unwrap();
        let write: Op = "write".parse().unwrap();
        let mut fig = OpFigures {
            entry_stack: 900,
            max_stack: 1500,
            ..Default::default()
        };
        let mut lat = Latencies::default();
        for ns in [1_000, 2_000, 3_000, 4_000] {
            lat.record(ns);
        }
        fig.latencies = lat;
        let r = report(
            "interval",
            "fsession",
            1,
            2.0,
            2.0,
            &[(search, fig), (write, OpFigures::default())],
        );
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], "interval");
        assert_eq!(v["probes"], "fsession");
        let s = &v["ops"][0];
        assert_eq!(
            (s["op"].as_str(), s["count"].as_u64()),
            (Some("search"), Some(4))
        );
        assert_eq!(s["ops_per_sec"].as_f64(), Some(2.0));
        assert_eq!(
            (s["min_ns"].as_u64(), s["max_ns"].as_u64()),
            (Some(1000), Some(4000))
        );
        assert_eq!(s["max_stack_bytes"].as_u64(), Some(1500));
        let idle = &v["ops"][1];
        assert_eq!(idle["count"].as_u64(), Some(0));
        assert!(idle["p50_ns"].is_null() && idle["max_stack_bytes"].is_null());
        let table = r.table();
        assert!(
            table.contains("search") && table.contains("stack max") && table.contains("1500 B")
        );
    }
}
