//! The API's operations: which path and method name each, which query parameters and body fields
//! each takes (anything else is refused, as the real API does), and what each does to the account.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::account::{self, Account, Body, Code, SimError};

/// One operation of the reference, with the id from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    ListCertificates,
    CreateCertificate,
    GetCertificate(&'a str),
    UpdateCertificate(&'a str),
    DeleteCertificate(&'a str),
    ListDomains,
    CreateDomain,
    GetDomain(&'a str),
    UpdateDomain(&'a str),
    DeleteDomain(&'a str),
    DetachCertificate(&'a str),
    DetachPolicy(&'a str),
    ListCredentials,
    CreateCredential,
    GetCredential(&'a str),
    UpdateCredential(&'a str),
    DeleteCredential(&'a str),
}

/// The query parameters of a list.
const LIST_PARAMS: [&str; 2] = ["before_id", "limit"];
const CERTIFICATE_CREATE: [&str; 4] = [
    "description",
    "metadata",
    "certificate_pem",
    "private_key_pem",
];
const TEXT_FIELDS: [&str; 2] = ["description", "metadata"];
/// The documented parameters, the deprecated endpoint configuration ids the documented update
/// example sends, and `resolves_to`, which the official clients send (empty) on every call.
const DOMAIN_CREATE: [&str; 9] = [
    "domain",
    "region",
    "description",
    "metadata",
    "certificate_id",
    "certificate_management_policy",
    "http_endpoint_configuration_id",
    "https_endpoint_configuration_id",
    "resolves_to",
];
const DOMAIN_UPDATE: [&str; 7] = [
    "description",
    "metadata",
    "certificate_id",
    "certificate_management_policy",
    "http_endpoint_configuration_id",
    "https_endpoint_configuration_id",
    "resolves_to",
];
const CREDENTIAL_CREATE: [&str; 4] = ["description", "metadata", "acl", "owner_id"];
const CREDENTIAL_UPDATE: [&str; 3] = ["description", "metadata", "acl"];

impl<'a> Route<'a> {
    /// The operation `method` on `segments` names, if any.
    pub fn parse(method: &str, segments: &[&'a str]) -> Option<Route<'a>> {
        use Route::*;
        Some(match (method, segments) {
            ("GET", ["tls_certificates"]) => ListCertificates,
            ("POST", ["tls_certificates"]) => CreateCertificate,
            ("GET", ["tls_certificates", id]) => GetCertificate(id),
            ("PATCH", ["tls_certificates", id]) => UpdateCertificate(id),
            ("DELETE", ["tls_certificates", id]) => DeleteCertificate(id),
            ("GET", ["reserved_domains"]) => ListDomains,
            ("POST", ["reserved_domains"]) => CreateDomain,
            ("GET", ["reserved_domains", id]) => GetDomain(id),
            ("PATCH", ["reserved_domains", id]) => UpdateDomain(id),
            ("DELETE", ["reserved_domains", id]) => DeleteDomain(id),
            ("DELETE", ["reserved_domains", id, "certificate"]) => DetachCertificate(id),
            ("DELETE", ["reserved_domains", id, "certificate_management_policy"]) => {
                DetachPolicy(id)
            }
            ("GET", ["credentials"]) => ListCredentials,
            ("POST", ["credentials"]) => CreateCredential,
            ("GET", ["credentials", id]) => GetCredential(id),
            ("PATCH", ["credentials", id]) => UpdateCredential(id),
            ("DELETE", ["credentials", id]) => DeleteCredential(id),
            _ => return None,
        })
    }

    /// The query parameters it takes.
    pub fn query_params(self) -> &'static [&'static str] {
        match self {
            Route::ListCertificates | Route::ListDomains | Route::ListCredentials => &LIST_PARAMS,
            _ => &[],
        }
    }

    /// The body fields it takes; `None` when it takes no body.
    pub fn body_fields(self) -> Option<&'static [&'static str]> {
        match self {
            Route::CreateCertificate => Some(&CERTIFICATE_CREATE),
            Route::UpdateCertificate(_) => Some(&TEXT_FIELDS),
            Route::CreateDomain => Some(&DOMAIN_CREATE),
            Route::UpdateDomain(_) => Some(&DOMAIN_UPDATE),
            Route::CreateCredential => Some(&CREDENTIAL_CREATE),
            Route::UpdateCredential(_) => Some(&CREDENTIAL_UPDATE),
            _ => None,
        }
    }
}

/// ERR_NGROK_231 for a query parameter `route` does not take.
pub fn check_query(route: Route, query: &str) -> Result<(), SimError> {
    let allowed = route.query_params();
    match url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| !allowed.contains(&k.as_ref()))
    {
        Some((k, _)) => Err(Code::UnknownQuery.with(format!(
            "The query part of the requested URI includes unknown parameters: {k}."
        ))),
        None => Ok(()),
    }
}

/// What a route answers: the status and the JSON body, if any.
pub type Answer = (u16, Option<Value>);

/// Runs `route` on the account.
#[allow(
    clippy::too_many_lines,
    reason = "the route table: one short arm per documented operation"
)]
pub fn run(
    a: &mut Account,
    route: Route,
    b: &Body,
    query: &str,
    now: OffsetDateTime,
) -> Result<Answer, SimError> {
    use Route::*;
    let found = |v: Option<Value>, kind: &str, id: &str| match v {
        Some(v) => Ok((200, Some(v))),
        None => Err(SimError::not_found(kind, id)),
    };
    match route {
        ListCertificates => Ok((
            200,
            Some(list(a, "tls_certificates", &a.certificates, query)?),
        )),
        CreateCertificate => {
            let pem = b.string("certificate_pem")?.unwrap_or_default();
            let key = b.string("private_key_pem")?.unwrap_or_default();
            let extra = account::NewCertificate {
                description: b.string("description")?.unwrap_or_default(),
                metadata: b.string("metadata")?.unwrap_or_default(),
                issued_at: None,
            };
            let created = a.create_certificate(&pem, &key, extra, now)?;
            Ok((201, Some(to_value(&created))))
        }
        GetCertificate(id) => found(a.certificates.get(id).map(to_value), "TLS certificate", id),
        UpdateCertificate(id) => {
            let updated =
                a.update_certificate(id, b.string("description")?, b.string("metadata")?)?;
            Ok((200, Some(to_value(&updated))))
        }
        DeleteCertificate(id) => a.delete_certificate(id).map(|()| (204, None)),
        ListDomains => Ok((200, Some(list(a, "reserved_domains", &a.domains, query)?))),
        CreateDomain => Ok((
            201,
            Some(to_value(&a.create_domain(b.domain_fields()?, now)?)),
        )),
        GetDomain(id) => found(a.domains.get(id).map(to_value), "reserved domain", id),
        UpdateDomain(id) => Ok((
            200,
            Some(to_value(&a.update_domain(id, b.domain_fields()?, now)?)),
        )),
        DeleteDomain(id) => a.delete_domain(id).map(|()| (204, None)),
        DetachCertificate(id) => a.detach_certificate(id).map(|()| (204, None)),
        DetachPolicy(id) => a.detach_policy(id).map(|()| (204, None)),
        ListCredentials => Ok((200, Some(list(a, "credentials", &a.credentials, query)?))),
        CreateCredential => {
            let created = a.create_credential(
                b.string("description")?,
                b.string("metadata")?,
                b.strings("acl")?,
                now,
            )?;
            Ok((201, Some(to_value(&created))))
        }
        GetCredential(id) => found(a.credentials.get(id).map(to_value), "credential", id),
        UpdateCredential(id) => {
            let updated = a.update_credential(
                id,
                b.string("description")?,
                b.string("metadata")?,
                b.strings("acl")?,
            )?;
            Ok((200, Some(to_value(&updated))))
        }
        DeleteCredential(id) => a.delete_credential(id).map(|()| (204, None)),
    }
}

/// A page of `items`; `limit` outside 1 … 100 is ERR_NGROK_233.
fn list<T: Serialize>(
    a: &Account,
    collection: &str,
    items: &BTreeMap<String, T>,
    query: &str,
) -> Result<Value, SimError> {
    let mut limit = account::MAX_LIMIT;
    let mut before_id = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=account::MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Code::BadLimit.with(format!(
                            "The page size limit must be between 1 and {}.",
                            account::MAX_LIMIT
                        ))
                    })?;
            }
            "before_id" if !v.is_empty() => before_id = Some(v.into_owned()),
            _ => {}
        }
    }
    let page = account::page(items, before_id.as_deref(), limit);
    let next_page_uri = page.next_before.map(|last| {
        format!(
            "{}/{collection}?before_id={}&limit={limit}",
            a.base_url,
            url::form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>()
        )
    });
    Ok(json!({
        collection: page.items,
        "uri": format!("{}/{collection}", a.base_url),
        "next_page_uri": next_page_uri,
    }))
}

pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
