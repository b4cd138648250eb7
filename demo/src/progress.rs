//! A progress bar on stderr: redrawn in place on a terminal, one line per
//! phase otherwise (CI logs), with the time spent and an estimate of the
//! time left from the phases done so far.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Width of the bar in characters.
const WIDTH: usize = 24;

pub(crate) struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    tty: bool,
}

impl Progress {
    pub(crate) fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            // The demo measures with tokio's clock; this one only shows
            // the operator how long is left.
            #[expect(
                clippy::disallowed_methods,
                reason = "wall time for the operator, not a measurement"
            )]
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Announces the next phase.
    pub(crate) fn start(&mut self, what: &str) {
        self.done += 1;
        let line = render(self.done - 1, self.total, self.started.elapsed(), what);
        let mut err = std::io::stderr().lock();
        // A progress line that cannot be written is not worth failing for.
        let _ = if self.tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        eprintln!("{} phases in {}", self.total, clock(self.started.elapsed()));
    }
}

/// `[=======>        ]  7/24  0:42 spent, ~1:10 left  <what>`
fn render(done: usize, total: usize, spent: Duration, what: &str) -> String {
    let filled = (WIDTH * done).checked_div(total).unwrap_or(0).min(WIDTH);
    let mut bar = "=".repeat(filled);
    if filled < WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat(WIDTH - filled - 1));
    }
    let left = if done == 0 {
        String::new()
    } else {
        let per = spent.as_secs_f64() / done as f64;
        format!(
            ", ~{} left",
            clock(Duration::from_secs_f64(per * (total - done) as f64))
        )
    };
    format!(
        "[{bar}] {done:>2}/{total}  {} spent{left}  {what}",
        clock(spent)
    )
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_phases_done_and_estimates_the_rest() {
        let line = render(6, 24, Duration::from_secs(30), "tower-pressure at 5×");
        assert!(
            line.starts_with("[======>                 ]  6/24"),
            "{line}"
        );
        // 5 s a phase, 18 phases left.
        assert!(line.contains("0:30 spent, ~1:30 left"), "{line}");
        assert!(line.ends_with("tower-pressure at 5×"));
    }

    #[test]
    fn an_empty_or_full_bar_is_drawn_whole() {
        assert!(render(0, 24, Duration::ZERO, "x").starts_with(&format!("[>{}]", " ".repeat(23))));
        assert!(
            render(24, 24, Duration::from_secs(1), "x")
                .starts_with(&format!("[{}]", "=".repeat(24)))
        );
        assert!(render(0, 0, Duration::ZERO, "x").starts_with('['));
    }
}
