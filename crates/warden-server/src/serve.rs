//! [`App::serve`]: serving the router on a listener (and the dashboard on
//! its own, with `dashboard.listen`) within the connection limits
//! (`http/connections.rs`, one cap for both) with the background work
//! running beside it, and the drain on shutdown — stop taking connections
//! on every listener, let requests in flight finish (for
//! `server.shutdown_grace` at most), flush the audit log, integrate what
//! is queued and sign a last checkpoint.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use warden_store::Store;

use crate::http::connections;
use crate::state::now;
use crate::{App, ServerError, audit_sequencer, background, bind, metrics};

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
        let dashboard_listener = match options.dashboard.listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let mut tasks = vec![metrics::spawn(self.app.metrics.clone(), metrics_listener)];
        tasks.extend(background::spawn(
            &self.app,
            &self.access,
            &self.signer,
            self.sink.queued_signal(),
        ));
        if let Some(fanout) = &self.fanout {
            tasks.extend(fanout.spawn(Arc::clone(&self.replica)));
        }
        let router = self.router();
        let app = Arc::clone(&self.app);
        let budget = connections::Budget::new(&options.server);
        // One shutdown for both listeners: the main one's signal stops the
        // dashboard's too, and both drain within the same grace.
        let (stop, stopping) = watch::channel(false);
        let main = connections::serve_within(
            listener,
            router,
            options.server,
            &budget,
            self.app.metrics.clone(),
            async move {
                shutdown.await;
                let _ = stop.send(true);
            },
            move || {
                app.set_ready(false);
                tracing::info!("shutting down: draining requests in flight");
            },
        );
        let dashboard = async {
            let Some(listener) = dashboard_listener else {
                return Ok(());
            };
            let mut stopping = stopping;
            connections::serve_within(
                listener,
                self.dashboard_router(),
                options.server,
                &budget,
                self.app.metrics.clone(),
                async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                },
                || {},
            )
            .await
        };
        let (result, dashboard) = tokio::join!(main, dashboard);
        if let Err(e) = &dashboard {
            tracing::error!(error = %e, "the dashboard listener failed");
        }
        for task in tasks {
            task.abort();
        }
        let t = now();
        self.app.record_refusals(self.app.refusals.drain(), t).await;
        self.sink.close().await;
        audit_sequencer::drain(&self.app).await;
        if let Err(e) = warden_store::sign_checkpoint(&self.app.store, &self.signer, now()).await {
            tracing::warn!(error = %e, "could not sign the final checkpoint");
        }
        result.map_err(ServerError::Io)
    }
}
