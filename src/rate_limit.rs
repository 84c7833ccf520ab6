//! Keeps per-knock log lines from stalling the packet path under a flood: at most a budget of
//! lines per second, and one line saying how many were left out.

use std::time::Duration;

use crate::log_lines::{self, Flood};

/// A per-second budget of log lines. Time is given, as everywhere in the core.
#[derive(Debug)]
pub struct LogBudget {
    /// Which lines: what the summary of those left out calls them.
    flood: Flood,
    per_second: u32,
    second: u64,
    used: u32,
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log the line.
    Log,
    /// Log it, but first say how many lines the previous seconds left out.
    LogAfterSuppressed(u64),
    /// Leave it out (it is counted).
    Suppress,
}

impl LogBudget {
    /// A budget of `per_second` lines a second of `flood`'s kind.
    pub fn new(per_second: u32, flood: Flood) -> Self {
        LogBudget { flood, per_second, second: 0, used: 0, suppressed: 0 }
    }

    /// Whether a line at `now` may be logged.
    pub fn check(&mut self, now: Duration) -> Verdict {
        let second = now.as_secs();
        if second != self.second {
            self.second = second;
            self.used = 0;
        }
        if self.used >= self.per_second {
            self.suppressed += 1;
            return Verdict::Suppress;
        }
        self.used += 1;
        match std::mem::take(&mut self.suppressed) {
            0 => Verdict::Log,
            n => Verdict::LogAfterSuppressed(n),
        }
    }

    /// How many lines were left out, once the second they were left out in has passed and no
    /// line since has said so: a flood that stops still gets its summary.
    pub fn left_out(&mut self, now: Duration) -> Option<u64> {
        if self.suppressed == 0 || now.as_secs() == self.second {
            return None;
        }
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Whether a line at `now` may be logged; says first how many were left out before it.
    pub fn may_log(&mut self, now: Duration) -> bool {
        match self.check(now) {
            Verdict::Suppress => false,
            Verdict::LogAfterSuppressed(n) => {
                log::info!("{}", log_lines::left_out(n, self.flood));
                true
            }
            Verdict::Log => true,
        }
    }

    /// Says how many lines were left out, once their second has passed ([`left_out`](Self::left_out)).
    pub fn say_left_out(&mut self, now: Duration) {
        if let Some(n) = self.left_out(now) {
            log::info!("{}", log_lines::left_out(n, self.flood));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_per_second_then_a_summary() {
        let mut b = LogBudget::new(2, Flood::Knocks);
        let t = Duration::from_millis;
        assert_eq!(b.check(t(0)), Verdict::Log);
        assert_eq!(b.check(t(10)), Verdict::Log);
        assert_eq!(b.check(t(20)), Verdict::Suppress);
        assert_eq!(b.check(t(999)), Verdict::Suppress);
        assert_eq!(b.check(t(1000)), Verdict::LogAfterSuppressed(2));
        assert_eq!(b.check(t(1001)), Verdict::Log);
        assert_eq!(b.check(t(1002)), Verdict::Suppress);
        assert_eq!(b.left_out(t(1500)), None, "still the same second");
        assert_eq!(b.left_out(t(2000)), Some(1), "the flood stopped: its summary comes anyway");
        assert_eq!(b.left_out(t(3000)), None, "once");
    }
}
