//! The DNS diagnosis in the daemon: at most once per `edge.interval` (the edge schedule), the
//! custom domains of the sync that is running are looked up; every sync evaluates with the
//! latest diagnosis. Behind one function, [`diagnosis`], which the sync pass calls.
//!
//! The lookups run inside the pass, so the first sync after start already shows what DNS says;
//! they touch the supervisor's progress while they run (they send no API request).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Settings;
use crate::core::dns as core_dns;
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

    fn set(&self, value: Option<(Instant, Arc<Vec<DomainDns>>)>) {
        if let Ok(mut last) = self.last.lock() {
            *last = value;
        }
    }
}

/// The diagnosis this sync evaluates with: a new one when the last is older than
/// `edge.interval` (or there is none), else the last; none when `dns.enabled = false`. Sets
/// `ngrok_reserved_domain_dns_ok` from it for `inventory`.
pub(super) async fn diagnosis(
    shared: &Shared,
    settings: &Settings,
    inventory: &Inventory,
) -> Option<Arc<Vec<DomainDns>>> {
    if !settings.dns.enabled {
        shared.dns.set(None);
        shared.metrics.record_dns_ok(&[]);
        return None;
    }
    let last = shared.dns.get();
    let diagnosis = match last {
        Some((at, d)) if at.elapsed() < settings.edge.interval => d,
        _ => match look_up(shared, settings, inventory).await {
            Some(d) => {
                shared.dns.set(Some((Instant::now(), Arc::clone(&d))));
                d
            }
            None => last.map(|(_, d)| d)?,
        },
    };
    shared
        .metrics
        .record_dns_ok(&core_dns::dns_ok(inventory, &diagnosis));
    Some(diagnosis)
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
