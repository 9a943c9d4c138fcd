//! A stacked bar chart of allow/deny decisions per time bucket, as SVG
//! geometry (pure: the template draws it).

use warden_audit::{Decision, EventType};
use warden_store::ActivityCount;

/// Chart width in SVG units (it scales to its container).
pub const WIDTH: u32 = 960;
/// Chart height in SVG units.
pub const HEIGHT: u32 = 180;
const LEFT: u32 = 44;
const BOTTOM: u32 = 22;
const TOP: u32 = 8;

/// One bucket's bars and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// Left edge.
    pub x: u32,
    /// Width.
    pub width: u32,
    /// Top of the allow bar and its height.
    pub allow_y: u32,
    /// Height of the allow bar.
    pub allow_h: u32,
    /// Top of the deny bar (stacked on allow).
    pub deny_y: u32,
    /// Height of the deny bar.
    pub deny_h: u32,
    /// Counts, for the title and the table.
    pub allow: u64,
    /// Denials.
    pub deny: u64,
    /// Bucket start (Unix seconds).
    pub start: u64,
    /// Axis label (shown under some bars), e.g. `14:00`.
    pub label: Option<String>,
}

/// The chart: bars, the largest total, and the axis geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// One per bucket, oldest first.
    pub bars: Vec<Bar>,
    /// The largest allow + deny of a bucket.
    pub max: u64,
    /// Total allows and denials.
    pub total_allow: u64,
    /// Total denials.
    pub total_deny: u64,
    /// Y of the baseline.
    pub baseline: u32,
    /// X of the y axis.
    pub left: u32,
    /// Right end of the baseline.
    pub right: u32,
    /// Y of the top gridline (where `max` is).
    pub top: u32,
}

/// Buckets `[since, since + n*bucket)` with the `access_decision` counts of
/// `activity`; `label` names a bucket start for the axis.
pub fn decisions(activity: &[ActivityCount], since: u64, bucket: u64, n: u32, label: impl Fn(u64) -> String) -> Chart {
    let bucket = bucket.max(1);
    let n = n.max(1);
    let mut counts = vec![(0u64, 0u64); n as usize];
    for a in activity.iter().filter(|a| a.kind == EventType::AccessDecision.as_str()) {
        let Some(i) = a.bucket_start.checked_sub(since).map(|d| d / bucket) else {
            continue;
        };
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
            match a.outcome.as_deref().and_then(Decision::parse) {
                Some(Decision::Allow) => slot.0 += a.count,
                Some(Decision::Deny) => slot.1 += a.count,
                _ => {}
            }
        }
    }
    let max = counts.iter().map(|(a, d)| a + d).max().unwrap_or(0);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let baseline = HEIGHT - BOTTOM;
    let slot = (WIDTH - LEFT) / n;
    let width = slot.saturating_sub(2).max(1);
    let scale = |v: u64| -> u32 {
        v.saturating_mul(u64::from(plot_h))
            .checked_div(max)
            .map_or(0, |h| u32::try_from(h).unwrap_or(plot_h))
    };
    let every = n.div_ceil(8).max(1);
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &(allow, deny))| {
            let i = u32::try_from(i).unwrap_or(0);
            let allow_h = scale(allow);
            let deny_h = scale(allow + deny) - allow_h;
            let start = since + u64::from(i) * bucket;
            Bar {
                x: LEFT + i * slot + 1,
                width,
                allow_y: baseline - allow_h,
                allow_h,
                deny_y: baseline - allow_h - deny_h,
                deny_h,
                allow,
                deny,
                start,
                label: i.is_multiple_of(every).then(|| label(start)),
            }
        })
        .collect();
    Chart {
        bars,
        max,
        total_allow: counts.iter().map(|c| c.0).sum(),
        total_deny: counts.iter().map(|c| c.1).sum(),
        baseline,
        left: LEFT,
        right: WIDTH,
        top: TOP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(start: u64, kind: &str, outcome: Option<&str>, count: u64) -> ActivityCount {
        ActivityCount {
            bucket_start: start,
            kind: kind.to_owned(),
            outcome: outcome.map(str::to_owned),
            count,
        }
    }

    #[test]
    fn bars_stack_and_scale_to_the_largest_bucket() {
        let activity = [
            count(1000, "access_decision", Some("allow"), 30),
            count(1000, "access_decision", Some("deny"), 10),
            count(1100, "access_decision", Some("allow"), 10),
            count(1100, "token_issued", None, 99),
            count(5000, "access_decision", Some("deny"), 7), // outside
        ];
        let c = decisions(&activity, 1000, 100, 4, |s| s.to_string());
        assert_eq!(c.bars.len(), 4);
        assert_eq!((c.max, c.total_allow, c.total_deny), (40, 40, 10));
        let plot = HEIGHT - BOTTOM - TOP;
        let b0 = &c.bars[0];
        assert_eq!(b0.allow_h + b0.deny_h, plot, "the largest bucket fills the plot");
        assert_eq!(b0.deny_y + b0.deny_h, b0.allow_y, "deny sits on allow");
        assert_eq!(c.bars[1].allow_h, plot / 4);
        assert_eq!(c.bars[2].allow_h + c.bars[2].deny_h, 0);
        assert_eq!(c.bars[1].start, 1100);
    }

    #[test]
    fn an_empty_log_draws_an_empty_chart() {
        let c = decisions(&[], 0, 3600, 24, |_| String::new());
        assert_eq!(c.max, 0);
        assert!(c.bars.iter().all(|b| b.allow_h == 0 && b.deny_h == 0));
    }
}
