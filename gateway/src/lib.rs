//! gateway (to be filled).
