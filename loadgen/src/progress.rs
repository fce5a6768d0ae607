//! One progress line on stderr, drawn by `indicatif`, for the simulator and the HTTP
//! drivers alike.
//!
//! The guarantee: the line is drawn only when stderr is a terminal (indicatif hides it
//! otherwise, so pipes, logs and tests see nothing), at most a few times a second, and
//! never wider than the terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Progress;

/// Simulations smaller than this many decisions finish before a bar would be read.
const SIMULATION_WORTH_A_BAR: usize = 2_000_000;

/// Steps of the simulator's bar: per mille of the whole run.
const SIMULATION_SCALE: u64 = 1000;

/// A one-line progress display on stderr (hidden when stderr is not a terminal).
#[derive(Debug, Clone)]
pub struct ProgressLine {
    bar: ProgressBar,
}

impl ProgressLine {
    /// How often a caller that polls for its figures should refresh the line.
    pub const REFRESH: Duration = Duration::from_millis(500);

    /// A bar over `len` units with a message after it, drawn when `enabled` and stderr
    /// is a terminal.
    pub fn new(len: u64, enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        // The template is a constant: it parses, and the fallback is indicatif's default.
        if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {percent:>3}%  {wide_msg}") {
            bar.set_style(style.progress_chars("#>-"));
        }
        Self { bar }
    }

    /// The simulator's bar: `decisions` is the run's work (arrivals × runs); hidden
    /// for runs too short to need one.
    pub fn for_simulation(decisions: usize) -> Self {
        Self::new(SIMULATION_SCALE, decisions > SIMULATION_WORTH_A_BAR)
    }

    /// Follows the simulator's progress callback: where the run is across its steps
    /// (algorithms and references), and which one it is playing.
    pub fn simulation(&self, p: &Progress<'_>) {
        let steps = p.steps.max(1) as f64;
        let within = if p.total == 0 {
            1.0
        } else {
            p.done as f64 / p.total as f64
        };
        let fraction = (p.step.saturating_sub(1) as f64 + within) / steps;
        self.bar
            .set_position((fraction.clamp(0.0, 1.0) * SIMULATION_SCALE as f64) as u64);
        self.bar
            .set_message(format!("{} ({}/{})", p.label, p.step, p.steps));
    }

    /// Moves the bar to `position` with `message` after it.
    pub fn set(&self, position: u64, message: String) {
        self.bar.set_position(position);
        self.bar.set_message(message);
    }

    /// Prints `message` on its own line of stderr: above the bar when it is drawn (so
    /// the bar is not overwritten), plainly when it is hidden (scripts still read it).
    pub fn say(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.suspend(|| eprintln!("{message}"));
        }
    }

    /// True when nothing is drawn (stderr is not a terminal, or the bar is off).
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }

    /// Removes the line: the run's own output follows.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }

    /// Leaves the last line on screen: it is the run's final tally.
    pub fn keep(&self) {
        self.bar.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_when_off_and_positions_follow_the_steps() {
        let line = ProgressLine::new(SIMULATION_SCALE, false);
        assert!(line.is_hidden());
        line.simulation(&Progress {
            label: "gcra",
            step: 2,
            steps: 4,
            done: 50,
            total: 100,
        });
        // Step 2 of 4, half done: 37.5% of the run.
        assert_eq!(line.bar.position(), 375);
        line.clear();
        assert!(line.bar.is_finished());
        assert!(
            ProgressLine::for_simulation(10).is_hidden(),
            "a short run has no bar"
        );
    }
}
