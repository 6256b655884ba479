//! Request-log rows the database did not take (down, refusing writes),
//! kept in memory up to a bound and written when it answers again. Rows
//! beyond the bound are dropped and counted by the caller in
//! `llm_log_rows_dropped_total`: nothing is lost silently, and memory stays
//! bounded however long the outage.

use std::collections::VecDeque;

use super::RequestLog;

/// Rows kept by default (about 20 MB at typical row sizes); set with
/// `DATABASE_LOG_BACKLOG_ROWS`.
pub const DEFAULT_BOUND: usize = 50_000;

pub struct LogBacklog {
    rows: VecDeque<RequestLog>,
    bound: usize,
}

impl LogBacklog {
    pub fn new(bound: usize) -> Self {
        LogBacklog {
            rows: VecDeque::new(),
            bound,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Queue rows behind those already waiting; returns how many did not
    /// fit (the newest: the oldest keep their order and go first).
    pub fn keep(&mut self, rows: Vec<RequestLog>) -> u64 {
        let room = self.bound.saturating_sub(self.rows.len());
        let dropped = rows.len().saturating_sub(room);
        self.rows.extend(rows.into_iter().take(room));
        dropped as u64
    }

    /// The oldest rows, at most `n`, for a write attempt.
    pub fn take(&mut self, n: usize) -> Vec<RequestLog> {
        let n = n.min(self.rows.len());
        self.rows.drain(..n).collect()
    }

    /// Rows from [`LogBacklog::take`] whose write failed go back in front;
    /// returns how many did not fit (rows queued meanwhile may have filled
    /// the room; the newest are dropped).
    pub fn put_back(&mut self, rows: Vec<RequestLog>) -> u64 {
        for row in rows.into_iter().rev() {
            self.rows.push_front(row);
        }
        let over = self.rows.len().saturating_sub(self.bound);
        self.rows.truncate(self.bound);
        over as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(from: i64, n: i64) -> Vec<RequestLog> {
        (from..from + n)
            .map(|i| RequestLog {
                ts_ms: i,
                ..Default::default()
            })
            .collect()
    }

    fn ts(rows: &[RequestLog]) -> Vec<i64> {
        rows.iter().map(|r| r.ts_ms).collect()
    }

    #[test]
    fn bounded_in_order_and_counts_what_does_not_fit() {
        let mut b = LogBacklog::new(5);
        assert_eq!(b.keep(rows(0, 3)), 0);
        assert_eq!(b.keep(rows(3, 4)), 2, "two over the bound");
        assert_eq!(b.len(), 5);
        let first = b.take(2);
        assert_eq!(ts(&first), [0, 1]);
        // A failed retry puts them back in front, order kept.
        assert_eq!(b.put_back(first), 0);
        assert_eq!(ts(&b.take(10)), [0, 1, 2, 3, 4]);
        assert!(b.is_empty());

        // Rows queued while a retry was in flight: the newest give way.
        assert_eq!(b.keep(rows(10, 4)), 0);
        let taken = b.take(3);
        assert_eq!(b.keep(rows(20, 3)), 0);
        assert_eq!(b.put_back(taken), 2);
        assert_eq!(ts(&b.take(10)), [10, 11, 12, 13, 20]);
    }
}
