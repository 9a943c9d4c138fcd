//! HTTP plumbing every room uses: serving connections within limits,
//! capped request bodies, the client's address behind trusted proxies,
//! request ids with their log spans, and closing connections whose body
//! a refusal left unread.
//!
//! # What it must not touch
//! Tokens, policies and the store: nothing here decides anything.

pub mod body;
pub mod client_ip;
pub mod connections;
pub mod request_id;
pub mod unread_body;

pub use body::{read_body, read_json};
pub use client_ip::client_ip;
