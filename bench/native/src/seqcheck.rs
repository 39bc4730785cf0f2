//! Checks the sequence numbers one receiver gets from one sender: in order,
//! duplicated, out of order, lost, or late (arrived after it was given up
//! for lost). Pure bookkeeping, no I/O and no clock; the caller decides when
//! a message has waited long enough to be given up.

use std::collections::BTreeSet;

/// Largest gap recorded at once. A jump further than this is not a real
/// sender's (it sends a few signals per call) and would only fill memory.
const MAX_GAP: u64 = 100_000;

/// What became of the messages of one direction (sender to receiver).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages received, whatever their fate.
    pub received: u64,
    /// Received after a message with a higher number.
    pub out_of_order: u64,
    /// Received again after it had been received already.
    pub duplicated: u64,
    /// Given up for lost and then received after all.
    pub late: u64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.received += o.received;
        self.out_of_order += o.out_of_order;
        self.duplicated += o.duplicated;
        self.late += o.late;
    }
}

/// The expected sequence of one direction, starting at 0.
#[derive(Debug, Default)]
pub struct SeqCheck {
    /// The lowest number never received nor skipped over.
    next: u64,
    /// Skipped over by a higher number; may still arrive (out of order).
    missing: BTreeSet<u64>,
    /// Given up for lost; if one arrives after all, it is late.
    given_up: BTreeSet<u64>,
    /// Lost beyond [`MAX_GAP`]: counted, not remembered (an arrival of one
    /// of these after all counts as a duplicate).
    untracked: u64,
    tally: Tally,
}

impl SeqCheck {
    /// Records the arrival of message `seq`.
    pub fn observe(&mut self, seq: u64) {
        self.tally.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            let from = self.next.max(seq.saturating_sub(MAX_GAP));
            self.untracked += from - self.next;
            self.missing.extend(from..seq);
            self.next = seq.saturating_add(1);
        } else if self.missing.remove(&seq) {
            self.tally.out_of_order += 1;
        } else if self.given_up.remove(&seq) {
            self.tally.late += 1;
        } else {
            self.tally.duplicated += 1;
        }
    }

    /// Whether every message up to and including `last` has arrived.
    pub fn complete_through(&self, last: u64) -> bool {
        self.next > last && self.missing.first().is_none_or(|&m| m > last)
    }

    /// Gives up on every message up to `last` not received yet; returns how
    /// many that was. Later arrivals of these count as late.
    pub fn give_up_through(&mut self, last: u64) -> u64 {
        let keep = self.missing.split_off(&(last + 1));
        let mut n = self.missing.len() as u64;
        self.given_up.append(&mut self.missing);
        self.missing = keep;
        if self.next <= last {
            let from = self.next.max((last + 1).saturating_sub(MAX_GAP));
            n += last + 1 - self.next;
            self.untracked += from - self.next;
            self.given_up.extend(from..=last);
            self.next = last + 1;
        }
        n
    }

    /// Messages not received: given up, or still missing behind a later one.
    pub fn lost(&self) -> u64 {
        (self.given_up.len() + self.missing.len()) as u64 + self.untracked
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_is_complete_with_nothing_lost() {
        let mut c = SeqCheck::default();
        assert!(!c.complete_through(0));
        for s in 0..5 {
            c.observe(s);
        }
        assert!(c.complete_through(4));
        assert!(!c.complete_through(5));
        assert_eq!(c.lost(), 0);
        assert_eq!(c.tally(), Tally { received: 5, ..Tally::default() });
    }

    #[test]
    fn a_swap_is_one_out_of_order_and_no_loss() {
        let mut c = SeqCheck::default();
        c.observe(0);
        c.observe(2);
        assert!(!c.complete_through(2));
        assert_eq!(c.lost(), 1, "1 is missing until it arrives");
        c.observe(1);
        assert!(c.complete_through(2));
        assert_eq!(c.lost(), 0);
        assert_eq!(c.tally().out_of_order, 1);
        assert_eq!(c.tally().duplicated, 0);
    }

    #[test]
    fn a_repeat_is_a_duplicate() {
        let mut c = SeqCheck::default();
        for s in [0, 1, 1, 2, 0] {
            c.observe(s);
        }
        assert_eq!(c.tally().duplicated, 2);
        assert_eq!(c.tally().out_of_order, 0);
        assert!(c.complete_through(2));
    }

    #[test]
    fn giving_up_counts_the_missing_and_a_later_arrival_is_late() {
        let mut c = SeqCheck::default();
        c.observe(0);
        c.observe(2);
        assert_eq!(c.give_up_through(4), 3, "1 behind 2, and 3 and 4 never seen");
        assert!(c.complete_through(4));
        assert_eq!(c.lost(), 3);
        c.observe(3);
        assert_eq!(c.lost(), 2);
        assert_eq!(c.tally().late, 1);
        c.observe(5);
        assert!(c.complete_through(5));
        c.observe(3);
        assert_eq!(c.tally().duplicated, 1);
    }

    #[test]
    fn giving_up_keeps_what_is_missing_beyond_the_limit() {
        let mut c = SeqCheck::default();
        c.observe(5);
        assert_eq!(c.give_up_through(2), 3);
        assert_eq!(c.lost(), 5, "3 and 4 still missing, 0 to 2 given up");
        c.observe(4);
        assert_eq!(c.tally().out_of_order, 1);
        assert_eq!(c.give_up_through(3), 1);
        assert!(c.complete_through(5));
    }

    #[test]
    fn a_huge_jump_does_not_fill_memory() {
        let mut c = SeqCheck::default();
        c.observe(u64::MAX / 2);
        assert_eq!(c.lost(), u64::MAX / 2);
        assert!(c.missing.len() as u64 <= MAX_GAP);
    }
}
