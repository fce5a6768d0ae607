//! What a run reads from the targets and the backend before and after the load: that
//! the targets are ratelab gateways (and their counters), which algorithm they run, and
//! the backend's counts — the ground truth the results are judged against.
//!
//! The guarantee: before the load, anything unusable is an error (the run does not
//! start); after it, a read that fails becomes a note in the results, never a lost run.

use std::time::Duration;

use crate::drivers::http::client::{self, BackendStats, ClientError, GatewaySnapshot, HttpClient};

/// What was known before the first request.
#[derive(Debug, Clone)]
pub(crate) struct Before {
    /// Base URLs of the targets.
    pub targets: Vec<String>,
    /// Where the targets' `/metrics` is read: their admin URLs, else the targets.
    pub metrics: Vec<String>,
    /// The backend's base URL, when given.
    pub backend: Option<String>,
    /// The targets' counters summed (empty when they are not gateways).
    pub gateways: GatewaySnapshot,
    /// False when the targets expose no ratelab metrics (`--no-gateway-check`).
    pub is_gateway: bool,
    /// The backend's counts.
    pub backend_stats: Option<BackendStats>,
}

impl Before {
    /// The algorithm the results name: the one asked for, else what the gateways'
    /// `/metrics` say they run, else `unknown`.
    pub fn algorithm(&self, asked: Option<&str>) -> String {
        match asked {
            Some(a) => a.to_owned(),
            None if self.gateways.algorithms.is_empty() => "unknown".to_owned(),
            None => self
                .gateways
                .algorithms
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("+"),
        }
    }
}

/// Checks the targets and reads the counters before the run. With `check_gateway`, a
/// target that is not a ratelab gateway is an error; without, it only marks the run.
pub(crate) async fn before(
    http: &HttpClient,
    targets: &[String],
    admin: &[String],
    backend: Option<&str>,
    check_gateway: bool,
) -> Result<Before, ClientError> {
    let targets = targets
        .iter()
        .map(|t| client::base_url(t))
        .collect::<Result<Vec<_>, _>>()?;
    let metrics = if admin.is_empty() {
        targets.clone()
    } else {
        admin
            .iter()
            .map(|t| client::base_url(t))
            .collect::<Result<Vec<_>, _>>()?
    };
    let backend = backend.map(client::base_url).transpose()?;
    let mut gateways = GatewaySnapshot::default();
    let mut is_gateway = true;
    for t in &metrics {
        if check_gateway {
            gateways.add(&client::probe_gateway(http, t).await?);
        } else {
            match client::gateway_metrics(http, t, Duration::from_secs(2)).await {
                Ok(s) => gateways.add(&s),
                Err(_) => is_gateway = false,
            }
        }
    }
    let backend_stats = match &backend {
        Some(b) => Some(client::backend_stats(http, b).await?),
        None => None,
    };
    Ok(Before {
        targets,
        metrics,
        backend,
        gateways,
        is_gateway,
        backend_stats,
    })
}

/// The gateways' counters summed over `targets`; `None` when any cannot be read.
pub(crate) async fn gateway_sum(http: &HttpClient, targets: &[String]) -> Option<GatewaySnapshot> {
    let mut sum = GatewaySnapshot::default();
    for t in targets {
        let s = client::gateway_metrics(http, t, Duration::from_secs(2))
            .await
            .ok()?;
        sum.add(&s);
    }
    Some(sum)
}

/// What was read after the run; what could not be read is said in `notes`.
#[derive(Debug, Clone)]
pub(crate) struct After {
    /// The backend's counts.
    pub backend_stats: Option<BackendStats>,
    /// The gateways' counters summed.
    pub gateways: Option<GatewaySnapshot>,
}

/// Reads the backend's counts and the gateways' counters after the run. The backend
/// counts each request before answering it, so its count is exact once the load ends.
pub(crate) async fn after(http: &HttpClient, before: &Before, notes: &mut Vec<String>) -> After {
    let backend_stats = match &before.backend {
        Some(b) => match client::backend_stats(http, b).await {
            Ok(s) => Some(s),
            Err(e) => {
                notes.push(format!(
                    "could not read the backend's counts after the run: {e}"
                ));
                None
            }
        },
        None => None,
    };
    let gateways = if before.is_gateway {
        let sum = gateway_sum(http, &before.metrics).await;
        if sum.is_none() {
            notes.push("could not read the gateways' /metrics after the run".to_owned());
        }
        sum
    } else {
        None
    };
    After {
        backend_stats,
        gateways,
    }
}
