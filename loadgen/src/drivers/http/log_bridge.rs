//! Goose logs through the `log` crate and, left alone, installs a logger that prints
//! a warning to stdout for every failed request. This bridge is installed first: goose's
//! messages go to `tracing` instead, one level quieter (`RUST_LOG=goose=debug` shows
//! its warnings), so a run against a failing target keeps a readable terminal — the
//! driver counts failures itself.

use std::sync::Once;

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        match record.level() {
            log::Level::Error => tracing::warn!(target: "goose", "{}", record.args()),
            log::Level::Warn => tracing::debug!(target: "goose", "{}", record.args()),
            _ => tracing::trace!(target: "goose", "{}", record.args()),
        }
    }

    fn flush(&self) {}
}

/// Installs the bridge as the process's `log` logger, once; a no-op when another
/// logger was installed first.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if log::set_boxed_logger(Box::new(Bridge)).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
    });
}
