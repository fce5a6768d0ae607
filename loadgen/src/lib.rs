//! loadgen (to be filled).
