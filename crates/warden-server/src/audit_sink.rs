//! The one interface every audited action records through.
//!
//! [`AuditSink::record`] returns only once the event is durable (queued
//! by the audit writer's group commit; the sequencer gives it its place in
//! the Merkle log soon after); callers acknowledge the action they record
//! only after that, and fail closed (503) when it errors.

use std::future::Future;
use std::pin::Pin;

use warden_audit::AuditEvent;
use warden_store::AuditWriter;

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written: {0}")]
pub struct AuditSinkError(pub String);

/// A boxed future, so that sinks can be trait objects.
pub type RecordFuture<'a> = Pin<Box<dyn Future<Output = Result<u64, AuditSinkError>> + Send + 'a>>;

/// Where audit events go.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Queues `event` durably and returns its queue receipt.
    fn record(&self, event: AuditEvent) -> RecordFuture<'_>;
}

/// The Merkle-log sink: the store's group-committing [`AuditWriter`].
#[derive(Debug, Clone)]
pub struct MerkleSink {
    writer: AuditWriter,
}

impl MerkleSink {
    /// A sink over `writer`.
    pub fn new(writer: AuditWriter) -> Self {
        MerkleSink { writer }
    }

    /// Notified after each batch the writer queued (for the sequencer).
    pub fn queued_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.writer.queued_signal()
    }

    /// Stops accepting events and waits for the last batch.
    pub async fn close(&self) {
        self.writer.close().await;
    }
}

impl AuditSink for MerkleSink {
    fn record(&self, event: AuditEvent) -> RecordFuture<'_> {
        Box::pin(async move {
            self.writer
                .append(&event)
                .await
                .map_err(|e| AuditSinkError(e.to_string()))
        })
    }
}
