//! reports (to be filled).
