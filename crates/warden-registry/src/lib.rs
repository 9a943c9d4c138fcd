//! Warden's governance registry core: what a dataset, a model and their
//! versions are, how lineage nodes are named, which stage changes are
//! allowed, and who may approve a promotion to production.
//!
//! # What it owns
//! - [`dataset`]: [`Classification`], [`DatasetSpec`] (what a caller
//!   submits, validated by [`DatasetSpec::validate`]), [`Dataset`] and its
//!   versions ([`DatasetVersionSpec`], [`DatasetVersion`]).
//! - [`model`]: [`Stage`] and its transitions ([`Stage::check_transition`]),
//!   [`ModelSpec`], [`Model`], [`ModelVersionSpec`], [`ModelVersion`].
//! - [`lineage`]: [`NodeRef`] (`dataset:NAME@VERSION`,
//!   `model:NAME@VERSION`), [`Edge`], [`Direction`], [`Graph`].
//! - [`approval`]: [`PromotionRequest`], [`Ballot`], and [`decide_vote`],
//!   the four-eyes rule as a pure function: never the requester, never an
//!   agent or a delegated token, one vote per principal, expired approvals
//!   do not count, a rejection closes the request.
//! - [`subject`]: the canonical form in which principals compare
//!   (`user:Eve` is `user:eve`).
//! - [`RegistryError`]: every refusal with a message fit for an API client.
//!
//! # What it must not touch
//! No database, no network, no clock (every `now` is given), no policy
//! engine: storage lives in `warden-store`, authorization (Cedar) and HTTP
//! in `warden-server`. The rules here hold whatever the policies say; the
//! policies can only narrow them.
#![deny(missing_docs)]

pub mod approval;
pub mod dataset;
mod error;
pub mod lineage;
pub mod model;
pub mod subject;
mod validate;

pub use approval::{Ballot, PromotionRequest, RequestStatus, Vote, VoteOutcome, Voter, decide_vote};
pub use dataset::{Classification, Dataset, DatasetPatch, DatasetSpec, DatasetVersion, DatasetVersionSpec};
pub use error::RegistryError;
pub use lineage::{Direction, Edge, Graph, NodeKind, NodeRef};
pub use model::{Model, ModelSpec, ModelVersion, ModelVersionSpec, Stage};
pub use validate::{check_digest, check_name, check_reason, check_uri};
