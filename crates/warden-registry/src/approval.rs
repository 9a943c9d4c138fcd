//! Four-eyes promotion to production.
//!
//! Moving a model version to production opens a [`PromotionRequest`]. It
//! completes when `required` distinct principals have approved it, each
//! approval younger than the request's `approval_ttl`; one rejection
//! closes it. [`decide_vote`] is the whole rule, as a pure function over
//! the request and the ballots cast so far, so the store can apply it
//! inside one transaction (concurrent approvals then race to exactly
//! `required` recorded) and tests can exercise it without a database.
//!
//! Whatever the policies say, these never vote:
//! - the requester (the subject of the token that opened the request,
//!   compared in [`subject::canonical`] form: `user:Eve` is `user:eve`),
//! - an agent (`agent:` subject) or a service (`svc:`; a client that is
//!   an agent in all but name): only `user:` subjects vote,
//! - anyone through a delegated token (a non-empty `act` chain): an agent
//!   acting for an approver is still an agent.
//!
//! The requester may reject (withdraw) their own request, since that can
//! only stop a promotion.

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::subject;

/// Where a promotion request is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Collecting approvals.
    Open,
    /// Enough approvals: the version went to production.
    Approved,
    /// Someone rejected it.
    Rejected,
}

impl RequestStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "open" => Ok(RequestStatus::Open),
            "approved" => Ok(RequestStatus::Approved),
            "rejected" => Ok(RequestStatus::Rejected),
            _ => Err(RegistryError::invalid(
                "status",
                "must be `open`, `approved` or `rejected`",
            )),
        }
    }
}

/// A request to move a model version to production.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRequest {
    /// Random id.
    pub id: String,
    /// The model.
    pub model: String,
    /// The version to promote.
    pub version: u32,
    /// Who asked (the token's subject).
    pub requested_by: String,
    /// The `act` chain of the requesting token, outermost first.
    pub requester_actors: Vec<String>,
    /// Why.
    pub reason: String,
    /// Where it is.
    pub status: RequestStatus,
    /// Approvals needed.
    pub required: u32,
    /// How long an approval counts, in seconds.
    pub approval_ttl: u64,
    /// When it was opened.
    pub created_at: u64,
    /// When it was approved or rejected.
    pub closed_at: Option<u64>,
}

/// Approve or reject.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    /// Counts towards `required`.
    Approve,
    /// Closes the request.
    Reject,
}

impl Vote {
    /// `approve` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Reject => "reject",
        }
    }

    /// Parses a stored vote.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "approve" => Ok(Vote::Approve),
            "reject" => Ok(Vote::Reject),
            _ => Err(RegistryError::invalid("vote", "must be `approve` or `reject`")),
        }
    }
}

/// A vote cast on a request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    /// The voter (a token subject).
    pub voter: String,
    /// Approve or reject.
    pub vote: Vote,
    /// Why.
    pub reason: String,
    /// When (Unix seconds).
    pub cast_at: u64,
}

impl Ballot {
    /// Whether this is an approval that still counts at `now`.
    pub fn counts(&self, ttl: u64, now: u64) -> bool {
        self.vote == Vote::Approve && now < self.cast_at.saturating_add(ttl)
    }
}

/// Who is voting: the subject and `act` chain of the presented token.
#[derive(Debug, Clone, Copy)]
pub struct Voter<'a> {
    /// The token's subject.
    pub subject: &'a str,
    /// Its `act` chain, outermost first; empty for a direct token.
    pub actors: &'a [String],
}

/// What a vote does, when the rules allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// The approval is recorded; `approvals` of `required` now count.
    Recorded {
        /// Approvals that count, this one included.
        approvals: u32,
        /// Approvals needed.
        required: u32,
        /// The voter's earlier approval had expired and this one replaces it.
        renewed: bool,
    },
    /// This approval was the last one needed: the version goes to
    /// production and the request closes as approved.
    Completed {
        /// Approvals that count, this one included.
        approvals: u32,
        /// The voter's earlier approval had expired and this one replaces it.
        renewed: bool,
    },
    /// The request closes as rejected.
    Rejected,
}

/// Applies the four-eyes rule to `voter` casting `vote` on `request`,
/// given the `ballots` cast so far, at `now`.
pub fn decide_vote(
    request: &PromotionRequest,
    ballots: &[Ballot],
    voter: Voter<'_>,
    vote: Vote,
    now: u64,
) -> Result<VoteOutcome, RegistryError> {
    if request.status != RequestStatus::Open {
        return Err(RegistryError::Closed(request.status.as_str()));
    }
    if !voter.actors.is_empty() {
        return Err(RegistryError::FourEyes(
            "a delegated token cannot vote on a promotion: four-eyes approval needs the person, not an agent acting for them",
        ));
    }
    if voter.subject.starts_with("agent:") {
        return Err(RegistryError::FourEyes("agents cannot vote on a promotion"));
    }
    if !voter.subject.starts_with("user:") {
        return Err(RegistryError::FourEyes(
            "only people (`user:` subjects) vote on a promotion, never a service",
        ));
    }
    if vote == Vote::Reject {
        return Ok(VoteOutcome::Rejected);
    }
    if subject::same(voter.subject, &request.requested_by) {
        return Err(RegistryError::FourEyes(
            "the requester cannot approve their own promotion request",
        ));
    }
    let ttl = request.approval_ttl;
    let mine = ballots.iter().find(|b| subject::same(&b.voter, voter.subject));
    if mine.is_some_and(|b| b.counts(ttl, now)) {
        return Err(RegistryError::FourEyes(
            "you have already approved this request; an approval counts once",
        ));
    }
    let renewed = mine.is_some();
    let others = ballots
        .iter()
        .filter(|b| !subject::same(&b.voter, voter.subject) && b.counts(ttl, now))
        .count();
    let approvals = u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1);
    if approvals >= request.required {
        Ok(VoteOutcome::Completed { approvals, renewed })
    } else {
        Ok(VoteOutcome::Recorded {
            approvals,
            required: request.required,
            renewed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 3600;

    fn request() -> PromotionRequest {
        PromotionRequest {
            id: "p1".into(),
            model: "fraud".into(),
            version: 3,
            requested_by: "user:alice".into(),
            requester_actors: vec![],
            reason: "better recall".into(),
            status: RequestStatus::Open,
            required: 2,
            approval_ttl: TTL,
            created_at: 100,
            closed_at: None,
        }
    }

    fn approve(voter: &str, at: u64) -> Ballot {
        Ballot {
            voter: voter.into(),
            vote: Vote::Approve,
            reason: "ok".into(),
            cast_at: at,
        }
    }

    fn direct(subject: &str) -> Voter<'_> {
        Voter { subject, actors: &[] }
    }

    #[test]
    fn two_distinct_approvers_complete() {
        let r = request();
        let first = decide_vote(&r, &[], direct("user:bob"), Vote::Approve, 200).unwrap();
        assert_eq!(
            first,
            VoteOutcome::Recorded {
                approvals: 1,
                required: 2,
                renewed: false
            }
        );
        let second = decide_vote(
            &r,
            &[approve("user:bob", 200)],
            direct("user:carol"),
            Vote::Approve,
            300,
        )
        .unwrap();
        assert_eq!(
            second,
            VoteOutcome::Completed {
                approvals: 2,
                renewed: false
            }
        );
    }

    #[test]
    fn the_requester_cannot_approve_but_may_withdraw() {
        let r = request();
        let e = decide_vote(&r, &[], direct("user:alice"), Vote::Approve, 200).unwrap_err();
        assert!(e.to_string().contains("requester"), "{e}");
        assert_eq!(
            decide_vote(&r, &[], direct("user:alice"), Vote::Reject, 200).unwrap(),
            VoteOutcome::Rejected
        );
    }

    #[test]
    fn subjects_differing_in_case_or_width_are_one_person() {
        let r = request();
        for alias in ["user:Alice", "user:ALICE", "user:ａｌｉｃｅ"] {
            let e = decide_vote(&r, &[], direct(alias), Vote::Approve, 200).unwrap_err();
            assert!(e.to_string().contains("requester"), "{alias}: {e}");
        }
        let e = decide_vote(&r, &[approve("user:bob", 200)], direct("user:Bob"), Vote::Approve, 201).unwrap_err();
        assert!(e.to_string().contains("counts once"), "{e}");
    }

    #[test]
    fn the_same_approver_counts_once() {
        let r = request();
        let e = decide_vote(&r, &[approve("user:bob", 200)], direct("user:bob"), Vote::Approve, 201).unwrap_err();
        assert!(e.to_string().contains("counts once"), "{e}");
    }

    #[test]
    fn agents_and_delegated_tokens_never_vote() {
        let r = request();
        let e = decide_vote(&r, &[], direct("agent:bot"), Vote::Approve, 200).unwrap_err();
        assert!(matches!(e, RegistryError::FourEyes(_)));
        let e = decide_vote(&r, &[], direct("svc:release-pipeline"), Vote::Approve, 200).unwrap_err();
        assert!(e.to_string().contains("never a service"), "{e}");
        let actors = ["agent:bot".to_owned()];
        for vote in [Vote::Approve, Vote::Reject] {
            let e = decide_vote(
                &r,
                &[],
                Voter {
                    subject: "user:bob",
                    actors: &actors,
                },
                vote,
                200,
            )
            .unwrap_err();
            assert!(e.to_string().contains("delegated"), "{e}");
        }
    }

    #[test]
    fn expired_approvals_do_not_count_and_can_be_renewed() {
        let r = request();
        let old = [approve("user:bob", 100)];
        let now = 100 + TTL;
        let carol = decide_vote(&r, &old, direct("user:carol"), Vote::Approve, now).unwrap();
        assert_eq!(
            carol,
            VoteOutcome::Recorded {
                approvals: 1,
                required: 2,
                renewed: false
            }
        );
        let bob = decide_vote(&r, &old, direct("user:bob"), Vote::Approve, now).unwrap();
        assert_eq!(
            bob,
            VoteOutcome::Recorded {
                approvals: 1,
                required: 2,
                renewed: true
            }
        );
        let just_before = decide_vote(&r, &old, direct("user:carol"), Vote::Approve, now - 1).unwrap();
        assert_eq!(
            just_before,
            VoteOutcome::Completed {
                approvals: 2,
                renewed: false
            }
        );
    }

    #[test]
    fn closed_requests_take_no_votes() {
        for status in [RequestStatus::Approved, RequestStatus::Rejected] {
            let mut r = request();
            r.status = status;
            let e = decide_vote(&r, &[], direct("user:bob"), Vote::Approve, 200).unwrap_err();
            assert_eq!(e, RegistryError::Closed(status.as_str()));
        }
    }

    #[test]
    fn rejections_do_not_count_as_approvals() {
        let mut r = request();
        r.required = 1;
        let ballots = [Ballot {
            vote: Vote::Reject,
            ..approve("user:dave", 150)
        }];
        assert_eq!(
            decide_vote(&r, &ballots, direct("user:bob"), Vote::Approve, 200).unwrap(),
            VoteOutcome::Completed {
                approvals: 1,
                renewed: false
            }
        );
    }

    proptest::proptest! {
        /// Whatever ballots exist, an approval completes exactly when the
        /// distinct, unexpired approvals by others reach `required - 1`.
        #[test]
        fn completion_counts_distinct_fresh_approvals(
            voters in proptest::collection::vec((0u8..6, 0u64..5000), 0..12),
            required in 1u32..5,
            now in 0u64..6000,
        ) {
            let mut r = request();
            r.required = required;
            let mut ballots: Vec<Ballot> = Vec::new();
            for (v, at) in voters {
                let name = format!("user:u{v}");
                if !ballots.iter().any(|b| b.voter == name) {
                    ballots.push(approve(&name, at));
                }
            }
            let fresh = ballots.iter().filter(|b| b.voter != "user:me" && now < b.cast_at + TTL).count() as u32;
            let out = decide_vote(&r, &ballots, direct("user:me"), Vote::Approve, now).unwrap();
            if fresh + 1 >= required {
                proptest::prop_assert!(matches!(out, VoteOutcome::Completed { .. }), "{:?}", out);
            } else {
                proptest::prop_assert!(
                    matches!(out, VoteOutcome::Recorded { approvals, .. } if approvals == fresh + 1),
                    "{:?}",
                    out
                );
            }
        }
    }
}
