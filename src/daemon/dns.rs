//! The DNS diagnosis in the daemon: at most once per `edge.interval` (the edge schedule), the
//! custom domains of the sync that is running are looked up ([`refresh`]); every sync evaluates
//! with the latest diagnosis ([`apply`]). The sync pass calls both through [`evaluate_with_dns`].
//!
//! The lookups run inside the pass, so the first sync after start already shows what DNS says;
//! they touch the supervisor's progress while they run (they send no API request). A probe
//! task on the edge schedule could call [`refresh`] instead, leaving [`apply`] to the sync.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Settings;
use crate::core::dns as core_dns;
use crate::model::Finding;
use crate::sources::dns::{self, DomainDns};
use crate::sources::inventory::Inventory;

use super::Shared;

/// The last diagnosis and when it was made.
#[derive(Default)]
pub(super) struct DnsMemory {
    last: Mutex<Option<(Instant, Arc<Vec<DomainDns>>)>>,
}

impl DnsMemory {
    fn get(&self) -> Option<(Instant, Arc<Vec<DomainDns>>)> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// Whether a diagnosis is in force: the last sync's findings include it.
    pub(super) fn diagnosed(&self) -> bool {
        self.get().is_some()
    }

    fn set(&self, value: Option<(Instant, Arc<Vec<DomainDns>>)>) {
        if let Ok(mut last) = self.last.lock() {
            *last = value;
        }
    }
}

/// The sync pass's DNS step: looks up again when the last diagnosis is older than
/// `edge.interval` (or there is none), then applies the latest to `findings`.
pub(super) async fn evaluate_with_dns(
    shared: &Shared,
    settings: &Settings,
    inventory: &Inventory,
    findings: &mut Vec<Finding>,
) {
    let due = match shared.dns.get() {
        Some((at, _)) => at.elapsed() >= settings.edge.interval,
        None => true,
    };
    if settings.dns.enabled && due {
        refresh(shared, settings, inventory).await;
    }
    apply(shared, settings, inventory, findings);
}

/// Looks the custom domains of `inventory` up and keeps the diagnosis (a failed setup keeps the
/// last one).
pub(super) async fn refresh(shared: &Shared, settings: &Settings, inventory: &Inventory) {
    if let Some(d) = look_up(shared, settings, inventory).await {
        shared.dns.set(Some((Instant::now(), d)));
    }
}

/// Adds the last diagnosis's findings to `findings` and sets `ngrok_reserved_domain_dns_ok` for
/// `inventory`; with `dns.enabled = false`, forgets it and clears the metric.
pub(super) fn apply(
    shared: &Shared,
    settings: &Settings,
    inventory: &Inventory,
    findings: &mut Vec<Finding>,
) {
    let last = shared.dns.get().filter(|_| settings.dns.enabled);
    let Some((_, diagnosis)) = last else {
        shared.dns.set(None);
        shared.metrics.record_dns_ok(&[]);
        return;
    };
    let dns_ok = core_dns::apply(inventory, &diagnosis, findings);
    shared.metrics.record_dns_ok(&dns_ok);
}

/// One pass of lookups; logs what could not be checked. `None` when no resolver can be built.
async fn look_up(
    shared: &Shared,
    settings: &Settings,
    inventory: &Inventory,
) -> Option<Arc<Vec<DomainDns>>> {
    let resolver = match dns::Resolver::from_settings(&settings.dns) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("DNS diagnosis skipped: {e}");
            return None;
        }
    };
    let started = Instant::now();
    let lookups = dns::diagnose(&resolver, inventory.domains());
    tokio::pin!(lookups);
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    let diagnosis = loop {
        tokio::select! {
            d = &mut lookups => break d,
            _ = ticks.tick() => shared.progress.touch(),
        }
    };
    let mut unchecked = 0;
    for (domain, verdict) in core_dns::verdicts(inventory, &diagnosis) {
        if let core_dns::Verdict::Unchecked { reason } = verdict {
            unchecked += 1;
            tracing::warn!(domain = %domain.domain, "DNS not checked: {reason}");
        }
    }
    tracing::info!(
        domains = diagnosis.len(),
        unchecked,
        duration_ms = started.elapsed().as_millis() as u64,
        "DNS diagnosis done"
    );
    Some(Arc::new(diagnosis))
}
