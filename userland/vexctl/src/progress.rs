//! Progress of long operations (inserting many batches, searching many
//! queries) on standard error: a bar when standard error is a terminal,
//! a line per step when asked for (`insert --progress`), and nothing
//! otherwise, so that piped or redirected output stays clean.

use std::io::{self, IsTerminal};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How an operation shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A bar redrawn in place (standard error is a terminal).
    Bar,
    /// A line per step, for logs.
    Lines,
    /// Nothing.
    Quiet,
}

/// What an operation of `steps` steps shows: a bar only when there is
/// progress to see (more than one step), someone to see it (standard error
/// is a terminal) and no machine-readable output it could be mixed up with
/// (`--json`); lines only when asked for.
pub fn mode(steps: usize, stderr_is_terminal: bool, json: bool, lines: bool) -> Mode {
    if steps > 1 && stderr_is_terminal && !json {
        Mode::Bar
    } else if lines {
        Mode::Lines
    } else {
        Mode::Quiet
    }
}

/// The progress of one operation over `total` units (vectors, queries).
pub struct Progress {
    bar: ProgressBar,
    mode: Mode,
    /// Past tense of the operation, for lines: "inserted".
    done: &'static str,
    unit: &'static str,
    total: u64,
}

impl Progress {
    /// Progress of `total` `unit`s in `steps` steps, on this process's
    /// standard error (see [`mode`]).
    pub fn new(
        done: &'static str,
        unit: &'static str,
        total: u64,
        steps: usize,
        json: bool,
        lines: bool,
    ) -> Self {
        Self::with_mode(
            mode(steps, io::stderr().is_terminal(), json, lines),
            done,
            unit,
            total,
        )
    }

    fn with_mode(mode: Mode, done: &'static str, unit: &'static str, total: u64) -> Self {
        let bar = if mode == Mode::Bar {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:40}} {{human_pos}}/{{human_len}} {unit}, {{per_sec}}, eta {{eta}}"
                ))
                .expect("the template is valid"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            mode,
            done,
            unit,
            total,
        }
    }

    /// What this operation shows.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `n` more units are done.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
        if self.mode == Mode::Lines {
            eprintln!("{}", self.line(self.bar.position()));
        }
    }

    /// The line of [`Mode::Lines`] after `done` units.
    fn line(&self, done: u64) -> String {
        format!(
            "{} {done} of {} {} ({}%)",
            self.done,
            self.total,
            self.unit,
            done * 100 / self.total.max(1)
        )
    }

    /// Runs `f` (which prints to the terminal) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// The operation is over: the bar goes away.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// The operation failed: the bar stays where it stopped, above the
    /// error.
    pub fn abandon(&self) {
        self.bar.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_only_for_several_steps_on_a_terminal_without_json() {
        assert_eq!(mode(2, true, false, false), Mode::Bar);
        assert_eq!(mode(2, true, false, true), Mode::Bar, "the bar wins");
        assert_eq!(mode(1, true, false, false), Mode::Quiet);
        assert_eq!(mode(40, false, false, false), Mode::Quiet, "piped");
        assert_eq!(mode(40, true, true, false), Mode::Quiet, "--json");
    }

    #[test]
    fn lines_only_when_asked_for() {
        assert_eq!(mode(40, false, false, true), Mode::Lines);
        assert_eq!(mode(1, true, false, true), Mode::Lines);
        assert_eq!(mode(0, false, true, true), Mode::Lines);
    }

    #[test]
    fn only_the_bar_mode_draws_a_bar() {
        for m in [Mode::Lines, Mode::Quiet] {
            assert!(Progress::with_mode(m, "inserted", "vectors", 10)
                .bar
                .is_hidden());
        }
        let p = Progress::with_mode(Mode::Quiet, "inserted", "vectors", 10);
        p.advance(4);
        assert_eq!(p.bar.position(), 4, "counted even when hidden");
        p.finish();
    }

    #[test]
    fn lines_say_how_far() {
        let p = Progress::with_mode(Mode::Lines, "inserted", "vectors", 400_000);
        assert_eq!(p.line(10_000), "inserted 10000 of 400000 vectors (2%)");
        assert_eq!(p.line(400_000), "inserted 400000 of 400000 vectors (100%)");
        let empty = Progress::with_mode(Mode::Lines, "searched", "queries", 0);
        assert_eq!(empty.line(0), "searched 0 of 0 queries (0%)");
    }
}
