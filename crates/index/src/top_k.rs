//! The best `k` of a stream, kept in a bounded min-heap: a search touches up to every document
//! but keeps only `k`, so it never sorts the whole candidate set.
//!
//! [`TopK::would_accept`] lets a caller skip expensive work (the caller's tag filter) for items
//! that could not enter the heap anyway; skipping them changes nothing, so "filter, then take the
//! best `k`" and "take the best `k` of those that pass the filter" give the same answer.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A score with a tie-breaker: ordered by score (`f32::total_cmp`, so the order is total even
/// with NaN), then by `tie` (the larger wins).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranked<T> {
    pub(crate) score: f32,
    pub(crate) tie: T,
}

impl<T: Ord> Ord for Ranked<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| self.tie.cmp(&other.tie))
    }
}

impl<T: Ord> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Ranked<T> {}

/// The `capacity` greatest items pushed so far.
#[derive(Debug)]
pub(crate) struct TopK<T> {
    capacity: usize,
    heap: BinaryHeap<Reverse<T>>,
}

impl<T> TopK<Ranked<T>>
where
    Ranked<T>: Ord,
{
    /// The least score kept, once the heap is full: anything scoring below it cannot enter.
    pub(crate) fn floor(&self) -> Option<f32> {
        if self.heap.len() < self.capacity {
            return None;
        }
        self.heap.peek().map(|Reverse(least)| least.score)
    }
}

impl<T: Ord> TopK<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        // A caller may ask for "everything" with a huge k; the heap grows as items arrive.
        Self {
            capacity,
            heap: BinaryHeap::with_capacity(capacity.min(4096)),
        }
    }

    /// Whether `item` would be kept if pushed now.
    pub(crate) fn would_accept(&self, item: &T) -> bool {
        if self.heap.len() < self.capacity {
            return true;
        }
        self.heap.peek().is_some_and(|Reverse(least)| item > least)
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.heap.len() < self.capacity {
            self.heap.push(Reverse(item));
        } else if let Some(mut least) = self.heap.peek_mut()
            && item > least.0
        {
            *least = Reverse(item);
        }
    }

    /// The kept items, greatest first.
    pub(crate) fn into_sorted_vec(self) -> Vec<T> {
        // `BinaryHeap<Reverse<T>>::into_sorted_vec` is ascending in `Reverse`, so descending in T.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(item)| item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(capacity: usize, items: &[i32], expected: &[i32]) {
        let mut top = TopK::new(capacity);
        for &item in items {
            top.push(item);
        }
        assert_eq!(
            top.into_sorted_vec(),
            expected,
            "capacity {capacity}, items {items:?}"
        );
    }

    #[test]
    fn keeps_the_greatest_in_descending_order() {
        check(3, &[5, 1, 9, 7, 3, 9], &[9, 9, 7]);
        check(0, &[5, 1], &[]);
        check(10, &[2, 1], &[2, 1]);
        check(1, &[], &[]);
    }

    #[test]
    fn would_accept_matches_push() {
        let mut top = TopK::new(2);
        assert!(top.would_accept(&1));
        top.push(5);
        top.push(3);
        assert!(!top.would_accept(&3));
        assert!(top.would_accept(&4));
        assert!(!TopK::<i32>::new(0).would_accept(&1));
    }

    #[test]
    fn ranked_orders_by_score_then_tie() {
        let a = Ranked { score: 1.0, tie: 1 };
        let b = Ranked { score: 1.0, tie: 2 };
        let c = Ranked { score: 2.0, tie: 0 };
        assert!(a < b && b < c);
        let nan = Ranked {
            score: f32::NAN,
            tie: 0,
        };
        assert_eq!(nan.cmp(&nan), Ordering::Equal);
    }
}
