//! Requests refused by a limit, tallied for the audit log: one
//! [`EventKind::RequestsRefused`] per limit, key and window with the count,
//! never one event per refused request (a flood of refusals must not
//! become a flood of log entries, nor go unrecorded).
//!
//! A key's window opens at its first refusal and lasts [`WINDOW`] seconds;
//! [`Refusals::ended`] hands out the windows that are over (the upkeep task
//! records them every second) and [`Refusals::drain`] every window at
//! shutdown. Past [`MAX_KEYS`] open windows, all are handed out at once
//! with the counts so far: memory stays bounded and no refusal is lost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use warden_audit::EventKind;

/// Length of a tally window, in seconds.
pub const WINDOW: u64 = 60;

/// Open windows kept at most before all are flushed early.
pub const MAX_KEYS: usize = 10_000;

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A gateway route's rate limit (429).
    Rate,
    /// The failed-client-authentication limit of the token endpoint (429).
    AuthFailures,
}

impl Limit {
    /// The event's `limit` member.
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::Rate => "rate_limit",
            Limit::AuthFailures => "failure_limit",
        }
    }
}

/// Who was refused: the tally's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Refused {
    /// The limit.
    pub limit: Limit,
    /// The subject (rate limit) or the presented client id (failures).
    pub principal: String,
    /// The route (rate limit), or empty.
    pub route: String,
    /// The caller's address, when the limit keys on it.
    pub source_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    count: u64,
    first_at: u64,
    last_at: u64,
}

/// The open windows.
#[derive(Debug, Default)]
pub struct Refusals {
    open: Mutex<HashMap<Refused, Tally>>,
}

impl Refusals {
    /// No refusals yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one refusal of `who` at `now`. Returns events to record at
    /// once when the table was full (every open window, counts so far).
    #[must_use = "events handed back must be recorded"]
    pub fn note(&self, who: Refused, now: u64) -> Vec<EventKind> {
        let Ok(mut open) = self.open.lock() else {
            return Vec::new();
        };
        let overflow = if open.len() >= MAX_KEYS && !open.contains_key(&who) {
            open.drain().map(event).collect()
        } else {
            Vec::new()
        };
        let tally = open.entry(who).or_insert(Tally {
            count: 0,
            first_at: now,
            last_at: now,
        });
        tally.count = tally.count.saturating_add(1);
        tally.last_at = tally.last_at.max(now);
        overflow
    }

    /// The windows that ended by `now`, removed from the table.
    pub fn ended(&self, now: u64) -> Vec<EventKind> {
        let Ok(mut open) = self.open.lock() else {
            return Vec::new();
        };
        let over: Vec<Refused> = open
            .iter()
            .filter(|(_, t)| now >= t.first_at.saturating_add(WINDOW))
            .map(|(k, _)| k.clone())
            .collect();
        over.into_iter()
            .filter_map(|k| open.remove_entry(&k))
            .map(event)
            .collect()
    }

    /// Every open window, ended or not (at shutdown).
    pub fn drain(&self) -> Vec<EventKind> {
        match self.open.lock() {
            Ok(mut open) => open.drain().map(event).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn event((who, tally): (Refused, Tally)) -> EventKind {
    EventKind::RequestsRefused {
        limit: who.limit.as_str().to_owned(),
        principal: who.principal,
        route: who.route,
        source_ip: who.source_ip,
        count: tally.count,
        first_at: tally.first_at,
        last_at: tally.last_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(principal: &str) -> Refused {
        Refused {
            limit: Limit::Rate,
            principal: principal.to_owned(),
            route: "chat".to_owned(),
            source_ip: None,
        }
    }

    fn count_of(e: &EventKind) -> (String, u64, u64, u64) {
        match e {
            EventKind::RequestsRefused {
                principal,
                count,
                first_at,
                last_at,
                ..
            } => (principal.clone(), *count, *first_at, *last_at),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn one_event_per_key_and_window_with_the_count() {
        let r = Refusals::new();
        for t in 0..38 {
            assert!(r.note(rate("user:a"), 1000 + t % 10).is_empty());
        }
        assert!(r.note(rate("user:b"), 1005).is_empty());
        assert!(r.ended(1059).is_empty(), "no window is over yet");
        let ended = r.ended(1060);
        assert_eq!(ended.len(), 1);
        assert_eq!(count_of(&ended[0]), ("user:a".to_owned(), 38, 1000, 1009));
        // A refusal after the window opens a new one.
        assert!(r.note(rate("user:a"), 1061).is_empty());
        let mut rest: Vec<_> = r.drain().iter().map(count_of).collect();
        rest.sort();
        assert_eq!(
            rest,
            [
                ("user:a".to_owned(), 1, 1061, 1061),
                ("user:b".to_owned(), 1, 1005, 1005)
            ]
        );
        assert!(r.drain().is_empty());
    }

    #[test]
    fn a_full_table_is_flushed_not_dropped() {
        let r = Refusals::new();
        for i in 0..MAX_KEYS {
            assert!(r.note(rate(&format!("user:{i}")), 1).is_empty());
        }
        assert!(r.note(rate("user:0"), 2).is_empty(), "a known key still counts");
        let flushed = r.note(rate("user:new"), 3);
        assert_eq!(flushed.len(), MAX_KEYS);
        let total: u64 = flushed.iter().map(|e| count_of(e).1).sum();
        assert_eq!(total, MAX_KEYS as u64 + 1);
        assert_eq!(r.drain().len(), 1);
    }
}
