//! The admin HTTP port (Kestrel's 2223): the dashboard, Prometheus metrics, health and
//! readiness, and JSON figures. It is bound before journal recovery, so `/healthz` answers
//! during a long replay while `/readyz` (and everything that needs the queues) says 503.

mod api;
mod metrics;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::shared::Shared;
use crate::status::Status;

/// The dashboard: one self-contained page (inline CSS, JS and SVG charts, nothing fetched
/// from elsewhere).
const DASHBOARD: &str = include_str!("dashboard.html");

/// How long a stopping admin server waits for requests in flight.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers see: the server once recovery has finished.
#[derive(Default)]
struct AdminState {
    shared: OnceLock<Arc<Shared>>,
}

type Admin = Arc<AdminState>;

/// A running admin HTTP server.
pub struct AdminServer {
    state: Admin,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `admin_listen` (`None` when it is `""`) and serves on the current runtime.
    pub async fn start(address: Option<SocketAddr>) -> anyhow::Result<Option<AdminServer>> {
        let Some(address) = address else {
            return Ok(None);
        };
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen for the admin HTTP port on {address}"))?;
        let address = listener.local_addr()?;
        info!(%address, "lanner admin listening on {address}");
        if !address.ip().to_canonical().is_loopback() {
            warn!(
                %address,
                "the admin HTTP port is bound to the non-loopback address {address}; it has no \
                 authentication, so anyone who can reach it sees every queue's figures and settings"
            );
        }
        let state = Admin::default();
        let stop = CancellationToken::new();
        let serving = axum::serve(listener, router(Arc::clone(&state)))
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        let task = tokio::spawn(async move {
            if let Err(error) = serving.await {
                warn!(%error, "admin HTTP server failed");
            }
        });
        Ok(Some(AdminServer { state, stop, task }))
    }

    /// Recovery is done: the endpoints that need the queues start answering.
    pub fn recovered(&self, shared: &Arc<Shared>) {
        // Set once per server: a second call would be a bug, and the first value stays right.
        let _ = self.state.shared.set(Arc::clone(shared));
    }

    /// Stops accepting, lets requests in flight finish (for a short while), and returns.
    pub async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(STOP_TIMEOUT, self.task).await.is_err() {
            warn!("admin HTTP server did not stop in time");
        }
    }
}

fn router(state: Admin) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/stats.json", get(stats_json))
        .route("/api/queues", get(queues_json))
        .route("/api/queues/{name}", get(queue_json))
        .fallback(not_found)
        .with_state(state)
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(admin): State<Admin>) -> Response {
    when_recovered(&admin, |shared| match readiness(shared) {
        Ok(ready) => (StatusCode::OK, ready).into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    })
}

/// Ready while the server serves reads: status up, writeavoid or readonly, not shutting down.
fn readiness(shared: &Shared) -> Result<String, String> {
    if shared.shutdown.is_cancelled() {
        return Err("not ready: shutting down\n".to_owned());
    }
    let status = shared.status.current();
    let name = status.reply_name().to_ascii_lowercase();
    if status >= Status::Quiescent {
        Err(format!("not ready: status {name}\n"))
    } else {
        Ok(format!("ready: status {name}\n"))
    }
}

async fn metrics(State(admin): State<Admin>) -> Response {
    when_recovered(&admin, |shared| match metrics::encode(shared) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            warn!(%error, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    })
}

async fn stats_json(State(admin): State<Admin>) -> Response {
    when_recovered(&admin, api::stats)
}

async fn queues_json(State(admin): State<Admin>) -> Response {
    when_recovered(&admin, api::queues)
}

async fn queue_json(State(admin): State<Admin>, Path(name): Path<String>) -> Response {
    when_recovered(&admin, |shared| api::queue(shared, &name))
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}

/// `answer` for the server, or 503 while the journals are still being replayed.
fn when_recovered(admin: &AdminState, answer: impl FnOnce(&Shared) -> Response) -> Response {
    match admin.shared.get() {
        Some(shared) => answer(shared),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: recovering journals\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_but_health_waits_for_recovery() {
        let recovering = AdminState::default();
        let answer = when_recovered(&recovering, |_| StatusCode::OK.into_response());
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
