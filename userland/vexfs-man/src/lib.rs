//! The man pages of VexFS's tools, written from the clap definitions the
//! tools parse their arguments with, so a page cannot drift from `--help`:
//! vexctl(1) and a page per subcommand (vexctl-create(1), ...), and
//! mkfs.vexfs(8) and fsck.vexfs(8). `scripts/build-userland` writes them
//! to `target/man`, from where `make install` installs them.
//!
//! A page has clap_mangen's NAME, SYNOPSIS, DESCRIPTION, OPTIONS and
//! SUBCOMMANDS sections, then EXAMPLES (from the examples of `--help`) and
//! SEE ALSO.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

/// One man page: its file name (`vexctl-create.1`) and its roff source.
pub struct Page {
    pub file: String,
    pub roff: String,
}

/// Section of vexctl's pages: a command for users (root is needed only by
/// some subcommands).
const VEXCTL_SECTION: &str = "1";
/// Section of mkfs.vexfs and fsck.vexfs: system administration, as
/// mkfs(8) and fsck(8).
const ADMIN_SECTION: &str = "8";

/// Every page, dated `date` (YYYY-MM-DD).
pub fn pages(date: &str) -> Vec<Page> {
    let mut vexctl = vexctl::command().disable_help_subcommand(true);
    vexctl.build();
    let page =
        |cmd: &clap::Command, section: &str, see_also: &[&str]| page(cmd, section, date, see_also);
    let mut pages = vec![page(
        &vexctl,
        VEXCTL_SECTION,
        &["mkfs.vexfs(8)", "fsck.vexfs(8)", "mount(8)"],
    )];
    for sub in vexctl.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(page(sub, VEXCTL_SECTION, &["vexctl(1)"]));
    }
    pages.push(page(
        &vexfs_tools::cli::mkfs_command(),
        ADMIN_SECTION,
        &["fsck.vexfs(8)", "vexctl(1)", "mkfs(8)", "mount(8)"],
    ));
    pages.push(page(
        &vexfs_tools::cli::fsck_command(),
        ADMIN_SECTION,
        &["mkfs.vexfs(8)", "vexctl(1)", "fsck(8)"],
    ));
    pages
}

/// Writes every page, dated `date`, into `dir` (created if missing);
/// returns their paths.
pub fn write_to(dir: &Path, date: &str) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    pages(date)
        .into_iter()
        .map(|p| {
            let path = dir.join(&p.file);
            fs::write(&path, p.roff)?;
            Ok(path)
        })
        .collect()
}

/// A section renderer of clap_mangen.
type Section = fn(&Man, &mut dyn io::Write) -> io::Result<()>;

/// The page of `cmd` (built, if a subcommand, as part of its parent).
fn page(cmd: &clap::Command, section: &str, date: &str, see_also: &[&str]) -> Page {
    let version = env!("CARGO_PKG_VERSION");
    let man = Man::new(cmd.clone())
        .section(section)
        .date(date)
        .source(format!("VexFS {version}"))
        .manual("VexFS");
    let mut sections: Vec<Section> = vec![
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
    ];
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        sections.push(Man::render_options_section);
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        sections.push(Man::render_subcommands_section);
    }
    // Each render starts with the same preamble (a string definition);
    // the page needs it once.
    let preamble = Roff::new().render();
    let mut roff = String::new();
    for (i, render) in sections.into_iter().enumerate() {
        let mut out = Vec::new();
        render(&man, &mut out).expect("writing to a Vec cannot fail");
        let text = String::from_utf8(out).expect("clap_mangen writes UTF-8");
        roff += if i == 0 {
            &text
        } else {
            text.strip_prefix(&preamble).unwrap_or(&text)
        };
    }
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut tail = Roff::new();
    if let Some(help) = cmd.get_after_long_help().map(|h| h.to_string()) {
        tail.control("SH", ["EXAMPLES"]);
        for (what, commands) in &examples(name, &help) {
            tail.control("PP", []).text([roman(*what)]);
            tail.control("RS", ["4"]).control("nf", []);
            for c in commands {
                tail.text([roman(*c)]);
            }
            tail.control("fi", []).control("RE", []);
        }
    }
    tail.control("SH", ["SEE ALSO"])
        .text([roman(see_also.join(", "))]);
    roff += &tail.to_roff();
    Page {
        file: format!("{name}.{section}"),
        roff,
    }
}

/// The date of the man pages: that of `SOURCE_DATE_EPOCH` (seconds since
/// 1970, as reproducible builds set it; scripts/build-userland gives the
/// last commit's), else today's.
pub fn date_from_env() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    iso_date(secs)
}

/// YYYY-MM-DD of a time in seconds since 1970 (UTC), by the proleptic
/// Gregorian calendar (H. Hinnant's civil_from_days).
pub fn iso_date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The examples of a `--help` epilogue: after an `Examples:` line, each is
/// a description ending in ':' indented by two spaces, then its command
/// lines indented by four (the layout of userland/vexctl/src/cli.rs).
/// Anything else is a mistake in the epilogue of `name`, and panics.
pub fn examples<'a>(name: &str, help: &'a str) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut lines = help.lines();
    assert_eq!(
        lines.next(),
        Some("Examples:"),
        "{name}: the epilogue of --help is not examples"
    );
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in lines {
        if let Some(command) = line.strip_prefix("    ") {
            match out.last_mut() {
                Some((_, commands)) => commands.push(command),
                None => panic!("{name}: example command {command:?} has no description"),
            }
        } else {
            match line.strip_prefix("  ") {
                Some(what) if !what.starts_with(' ') && what.ends_with(':') => {
                    out.push((what, Vec::new()))
                }
                _ => panic!(
                    "{name}: {line:?} in the examples is neither a description nor a command"
                ),
            }
        }
    }
    for (what, commands) in &out {
        assert!(
            !commands.is_empty(),
            "{name}: example {what:?} has no command"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400), "2000-02-29");
        assert_eq!(iso_date(1_700_000_000), "2023-11-14");
        assert_eq!(iso_date(4_102_444_799), "2099-12-31");
        assert_eq!(iso_date(-1), "1969-12-31");
    }

    #[test]
    fn examples_are_parsed() {
        let help = "Examples:\n  One:\n    a 1\n  Two:\n    b\n    c --x\n";
        assert_eq!(
            examples("t", help),
            [("One:", vec!["a 1"]), ("Two:", vec!["b", "c --x"])]
        );
    }

    #[test]
    #[should_panic(expected = "neither a description nor a command")]
    fn stray_lines_are_refused() {
        examples("t", "Examples:\n  One:\n    a\nmore text\n");
    }

    #[test]
    #[should_panic(expected = "has no command")]
    fn a_description_needs_a_command() {
        examples("t", "Examples:\n  One:\n  Two:\n    b\n");
    }
}
