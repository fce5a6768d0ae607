//! What a key and a state own on the heap, and the store's size report.

use std::sync::Arc;

/// Bytes a value owns on the heap, for memory accounting.
pub trait HeapSize {
    /// Heap bytes owned beyond `size_of::<Self>()`.
    fn heap_bytes(&self) -> usize;
}

macro_rules! no_heap {
    ($($t:ty),*) => { $(impl HeapSize for $t { fn heap_bytes(&self) -> usize { 0 } })* };
}
no_heap!(u8, u16, u32, u64, u128, usize, i32, i64);

impl HeapSize for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl HeapSize for Box<str> {
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

impl HeapSize for Arc<str> {
    fn heap_bytes(&self) -> usize {
        // Two reference counts live beside the text.
        self.len() + 2 * std::mem::size_of::<usize>()
    }
}

impl HeapSize for Vec<u8> {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl<A: HeapSize, B: HeapSize> HeapSize for (A, B) {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes()
    }
}

/// A snapshot of a store's size and evictions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Keys held now.
    pub keys: usize,
    /// Bytes held: hash tables plus what keys and states own on the heap.
    pub bytes: usize,
    /// Idle keys forgotten so far.
    pub evicted_idle: u64,
    /// Keys in use (not idle, not throttled) forgotten so far because a shard was
    /// full, least recently used first: each starts over with a full allowance.
    pub evicted_forced: u64,
    /// Throttled keys forgotten so far to make room ([`AtCapacity::EvictOldest`](super::AtCapacity::EvictOldest) only,
    /// when every key of a full shard was throttled).
    pub evicted_throttled: u64,
    /// New keys refused so far because the store was full of throttled keys
    /// ([`AtCapacity::Deny`](super::AtCapacity::Deny)).
    pub refused: u64,
}

impl StoreStats {
    /// Average bytes per key held (0 when empty).
    pub fn bytes_per_key(&self) -> f64 {
        if self.keys == 0 {
            0.0
        } else {
            self.bytes as f64 / self.keys as f64
        }
    }
}
