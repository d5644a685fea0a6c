//! Fuzz target `api_responses`: arbitrary bytes as the body of every ngrok API answer the client
//! reads (each resource, each list page, the error body), decoded with the client's own
//! `decode` and `error_from_body`, then what a sync does with them: the inventory (which
//! fingerprints each `certificate_pem`) and the evaluation into findings.
//!
//! Property: no panic, no hang; errors format without panic.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use ngrok_cert_watchdog::core::evaluate::evaluate;
use ngrok_cert_watchdog::model::ExpiryPolicy;
use ngrok_cert_watchdog::sources::inventory::Inventory;
use ngrok_cert_watchdog::sources::ngrok::{
    decode, error_from_body, ApiError, ReservedDomain, ReservedDomainList, TlsCertificate,
    TlsCertificateList, TunnelCredential, TunnelCredentialList,
};
use time::macros::datetime;
use url::Url;

fn page_link(next: Option<&str>) {
    let base = Url::parse("https://api.ngrok.com").expect("a URL");
    if let Some(Ok(next)) = next.map(|n| base.join(n)) {
        let _ = next.origin() == base.origin();
    }
}

fn shown<T>(result: Result<T, ApiError>) -> Option<T> {
    result.map_err(|e| e.to_string()).ok()
}

fn evaluate_all(
    certificates: Vec<TlsCertificate>,
    domains: Vec<ReservedDomain>,
    credentials: Vec<TunnelCredential>,
) {
    let now = datetime!(2027-01-01 0:00 UTC);
    for d in &domains {
        let _ = (d.is_managed(), d.is_ngrok_owned(), d.renews_at());
        let _ = (d.certificate_id(), d.provisioning_job());
    }
    let missing: BTreeSet<String> = domains
        .iter()
        .filter_map(|d| d.certificate_id().map(str::to_string))
        .take(1)
        .collect();
    let inventory = Inventory::new(now, certificates, domains, credentials, missing);
    for finding in evaluate(&inventory, &ExpiryPolicy::default(), now) {
        let _ = finding.message.len();
    }
}

fuzz_target!(|data: &[u8]| {
    let certificates = shown(decode::<TlsCertificateList>(data, "GET /tls_certificates"));
    let domains = shown(decode::<ReservedDomainList>(data, "GET /reserved_domains"));
    let credentials = shown(decode::<TunnelCredentialList>(data, "GET /credentials"));
    for next in [
        certificates.as_ref().map(|l| l.next_page_uri.as_deref()),
        domains.as_ref().map(|l| l.next_page_uri.as_deref()),
        credentials.as_ref().map(|l| l.next_page_uri.as_deref()),
    ]
    .into_iter()
    .flatten()
    {
        page_link(next);
    }
    let certificate = shown(decode::<TlsCertificate>(data, "GET /tls_certificates/x"));
    let domain = shown(decode::<ReservedDomain>(data, "GET /reserved_domains/x"));
    let credential = shown(decode::<TunnelCredential>(data, "GET /credentials/x"));
    evaluate_all(
        certificates
            .map(|l| l.tls_certificates)
            .unwrap_or_default()
            .into_iter()
            .chain(certificate)
            .collect(),
        domains
            .map(|l| l.reserved_domains)
            .unwrap_or_default()
            .into_iter()
            .chain(domain)
            .collect(),
        credentials
            .map(|l| l.credentials)
            .unwrap_or_default()
            .into_iter()
            .chain(credential)
            .collect(),
    );
    let status = data.first().map_or(400, |b| 400 + u16::from(*b) % 200);
    let error = error_from_body(status, data, "GET /tls_certificates");
    let _ = (error.to_string(), error.is_final_refusal());
});
