//! [`App::serve`]: serving the router on a listener within the connection
//! limits (`http/connections.rs`) with the background work running beside
//! it, and the drain on shutdown — stop taking connections, let requests
//! in flight finish (for `server.shutdown_grace` at most), flush the audit
//! log and sign a last checkpoint.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use warden_store::Store;

use crate::http::connections;
use crate::state::now;
use crate::{App, ServerError, background, bind, metrics};

impl<S: Store> App<S> {
    /// Serves on `listener` until `shutdown` resolves, then stops taking
    /// connections, lets requests in flight finish, flushes the audit log
    /// and signs a last checkpoint.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let options = &self.app.options;
        let metrics_listener = match options.metrics.listen {
            Some(addr) if options.metrics.enabled => Some(bind(addr).await?),
            _ => None,
        };
        let mut tasks = vec![metrics::spawn(self.app.metrics.clone(), metrics_listener)];
        tasks.extend(background::spawn(&self.app, &self.access, &self.signer));
        if let Some(fanout) = &self.fanout {
            tasks.extend(fanout.spawn(Arc::clone(&self.replica)));
        }
        let router = self.router();
        let app = Arc::clone(&self.app);
        let result = connections::serve(
            listener,
            router,
            options.server,
            self.app.metrics.clone(),
            shutdown,
            move || {
                app.set_ready(false);
                tracing::info!("shutting down: draining requests in flight");
            },
        )
        .await;
        for task in tasks {
            task.abort();
        }
        let t = now();
        self.app.record_refusals(self.app.refusals.drain(), t).await;
        self.sink.close().await;
        if let Err(e) = warden_store::sign_checkpoint(&self.app.store, &self.signer, now()).await {
            tracing::warn!(error = %e, "could not sign the final checkpoint");
        }
        result.map_err(ServerError::Io)
    }
}
