//! The simulator refuses what the real API refuses (UPSTREAM-NOTES.md), over HTTP, each with its
//! HTTP status and the documented error body's `error_code`; and the account it serves looks like
//! a real one (a dev domain, managed policies by default, whole-second timestamps).

mod common;

use std::time::Duration;

use ngrok_cert_watchdog::sim::{Fault, FaultKind, RateLimit, Sim, SimOptions};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

/// A request with the key and `Ngrok-Version: 2`; the status and the JSON body (null if none).
async fn call(sim: &Sim, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = common::http()
        .request(method, format!("{}{path}", sim.url()))
        .bearer_auth(common::KEY)
        .header("Ngrok-Version", "2");
    if let Some(body) = body {
        req = req.json(&body);
    }
    answer(req.send().await.unwrap()).await
}

async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The documented error body with this status and code.
#[track_caller]
fn refused(answer: &(u16, Value), status: u16, code: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert_eq!(body["status_code"], status, "{body}");
    assert!(
        body["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["details"]["operation_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("op_")),
        "{body}"
    );
}

/// An account without a dev domain: one uploaded certificate on `up.example.com`, one
/// ngrok-issued certificate on the managed `m.example.com`.
async fn account() -> Sim {
    common::seeded(
        r#"
        dev_domain = false
        [[certificate]]
        name = "up"
        dns_names = ["up.example.com"]
        [[certificate]]
        name = "le"
        dns_names = ["m.example.com"]
        managed = true
        [[domain]]
        domain = "up.example.com"
        certificate = "up"
        [[domain]]
        domain = "m.example.com"
        certificate = "le"
        managed = true
        renews_at = "+30d"
        "#,
    )
    .await
}

fn domain_id(sim: &Sim, name: &str) -> String {
    sim.with_account(|a| {
        a.domains
            .values()
            .find(|d| d.domain == name)
            .map(|d| d.id.clone())
            .unwrap()
    })
}

fn certificate_of(sim: &Sim, name: &str) -> String {
    sim.with_account(|a| {
        a.certificates
            .values()
            .find(|c| c.subject_common_name == name)
            .map(|c| c.id.clone())
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_and_versions_are_refused_with_their_codes() {
    let sim = common::sim().await;
    let http = common::http();
    let url = format!("{}/credentials", sim.url());
    let none = answer(
        http.get(&url)
            .header("Ngrok-Version", "2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(&none, 401, "ERR_NGROK_200");
    let wrong = answer(
        http.get(&url)
            .bearer_auth("not-the-key")
            .header("Ngrok-Version", "2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(&wrong, 401, "ERR_NGROK_203");
    let basic = answer(
        http.get(&url)
            .header("Authorization", "Basic abc")
            .header("Ngrok-Version", "2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(&basic, 401, "ERR_NGROK_203");
    let unsupported = answer(
        http.get(&url)
            .bearer_auth(common::KEY)
            .header("Ngrok-Version", "3")
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(&unsupported, 400, "ERR_NGROK_217");
    let missing = answer(
        http.get(&url)
            .bearer_auth(common::KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(&missing, 400, "ERR_NGROK_218");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_query_parameters_and_bad_limits_are_refused() {
    let sim = account().await;
    let cert = certificate_of(&sim, "up.example.com");
    for path in [
        "/tls_certificates?colour=red".to_string(),
        "/reserved_domains?limit=5&filter=true".to_string(),
        "/credentials?before_id=cr_1&page=2".to_string(),
        format!("/tls_certificates/{cert}?limit=1"),
    ] {
        refused(
            &call(&sim, Method::GET, &path, None).await,
            400,
            "ERR_NGROK_231",
        );
    }
    for limit in ["0", "101", "-1", "ten"] {
        refused(
            &call(
                &sim,
                Method::GET,
                &format!("/credentials?limit={limit}"),
                None,
            )
            .await,
            400,
            "ERR_NGROK_233",
        );
    }
    for ok in [
        "/credentials?limit=1",
        "/credentials?limit=100&before_id=cr_z",
    ] {
        assert_eq!(call(&sim, Method::GET, ok, None).await.0, 200, "{ok}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_body_fields_are_refused_documented_ones_accepted() {
    let sim = account().await;
    let cert = certificate_of(&sim, "up.example.com");
    let up = domain_id(&sim, "up.example.com");
    let cred = call(&sim, Method::POST, "/credentials", Some(json!({}))).await;
    assert_eq!(cred.0, 201);
    let cred = cred.1["id"].as_str().unwrap().to_string();
    let cases = [
        (
            Method::POST,
            "/credentials".to_string(),
            json!({"token": "x"}),
        ),
        (
            Method::PATCH,
            format!("/credentials/{cred}"),
            json!({"owner_id": "usr_1"}),
        ),
        (
            Method::POST,
            "/tls_certificates".to_string(),
            json!({"certificate_pem": "", "private_key_pem": "", "name": "x"}),
        ),
        (
            Method::PATCH,
            format!("/tls_certificates/{cert}"),
            json!({"certificate_pem": "x"}),
        ),
        (
            Method::POST,
            "/reserved_domains".to_string(),
            json!({"domain": "n.example.com", "colour": "red"}),
        ),
        (
            Method::PATCH,
            format!("/reserved_domains/{up}"),
            json!({"region": "eu"}),
        ),
        (
            Method::PATCH,
            format!("/reserved_domains/{up}"),
            json!({"domain": "other.example.com"}),
        ),
        (
            Method::PATCH,
            format!("/reserved_domains/{up}"),
            json!({"certificate_management_policy": {"authority": "letsencrypt", "key_size": 4096}}),
        ),
    ];
    for (method, path, body) in cases {
        let res = call(&sim, method.clone(), &path, Some(body.clone())).await;
        refused(&res, 400, "ERR_NGROK_214");
        assert!(
            res.1["msg"]
                .as_str()
                .unwrap()
                .contains("is unknown and not expected"),
            "{method} {path} {body}: {}",
            res.1
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn documented_fields_and_those_the_examples_send_are_accepted() {
    let sim = account().await;
    let cert = certificate_of(&sim, "up.example.com");
    let up = domain_id(&sim, "up.example.com");
    // The documented update example's deprecated fields, and what the official clients send.
    let example = json!({
        "description": "point-of-sale new york #302",
        "http_endpoint_configuration_id": "ec_2cSjwFMRltw7qZ6uG61OR57XmsA",
        "https_endpoint_configuration_id": "ec_2cSjwLcJ6kiDRQi7qh4E37rJry4",
        "metadata": "{}",
        "resolves_to": [],
    });
    let res = call(
        &sim,
        Method::PATCH,
        &format!("/reserved_domains/{up}"),
        Some(example),
    )
    .await;
    assert_eq!(res.0, 200, "{}", res.1);
    let created = json!({"domain": "n.example.com", "region": "us", "certificate_id": cert});
    assert_eq!(
        call(&sim, Method::POST, "/reserved_domains", Some(created))
            .await
            .0,
        201
    );
    let owner = json!({"description": "d", "metadata": "m", "acl": [], "owner_id": "usr_1"});
    assert_eq!(
        call(&sim, Method::POST, "/credentials", Some(owner))
            .await
            .0,
        201
    );
    refused(
        &common::http()
            .post(format!("{}/credentials", sim.url()))
            .bearer_auth(common::KEY)
            .header("Ngrok-Version", "2")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .map(answer)
            .unwrap()
            .await,
        400,
        "ERR_NGROK_213",
    );
    // A body where none is taken (ERR_NGROK_211), and one without a Content-Type (216).
    let raw = |method: reqwest::Method, path: &str, content_type: bool| {
        let mut request = common::http()
            .request(method, format!("{}{path}", sim.url()))
            .bearer_auth(common::KEY)
            .header("Ngrok-Version", "2")
            .body("{}");
        if content_type {
            request = request.header("content-type", "application/json");
        }
        request.send()
    };
    let get = raw(reqwest::Method::GET, "/credentials", true).await;
    refused(&answer(get.unwrap()).await, 400, "ERR_NGROK_211");
    let post = raw(reqwest::Method::POST, "/credentials", false).await;
    refused(&answer(post.unwrap()).await, 400, "ERR_NGROK_216");
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_and_policies_are_refused_where_ngrok_refuses_them() {
    let sim = account().await;
    let cert = certificate_of(&sim, "up.example.com");
    let up = domain_id(&sim, "up.example.com");
    let managed = domain_id(&sim, "m.example.com");
    let policy = json!({"authority": "letsencrypt", "private_key_type": "ecdsa"});
    let both = json!({"certificate_id": cert, "certificate_management_policy": policy});
    let mut create_both = both.clone();
    create_both["domain"] = json!("both.example.com");
    refused(
        &call(&sim, Method::POST, "/reserved_domains", Some(create_both)).await,
        400,
        "ERR_NGROK_434",
    );
    refused(
        &call(
            &sim,
            Method::PATCH,
            &format!("/reserved_domains/{up}"),
            Some(both),
        )
        .await,
        400,
        "ERR_NGROK_434",
    );
    // A managed domain's certificate is changed only after its policy is detached.
    refused(
        &call(
            &sim,
            Method::PATCH,
            &format!("/reserved_domains/{managed}"),
            Some(json!({"certificate_id": cert})),
        )
        .await,
        400,
        "ERR_NGROK_436",
    );
    refused(
        &call(
            &sim,
            Method::DELETE,
            &format!("/reserved_domains/{managed}/certificate"),
            None,
        )
        .await,
        400,
        "ERR_NGROK_436",
    );
    // An unknown certificate id, where one is referenced.
    let ghost = json!({"certificate_id": "cert_2cSjwGgYrGJdXQKfDJGdmj7ajCT"});
    refused(
        &call(
            &sim,
            Method::PATCH,
            &format!("/reserved_domains/{up}"),
            Some(ghost.clone()),
        )
        .await,
        404,
        "ERR_NGROK_1965",
    );
    let mut create_ghost = ghost;
    create_ghost["domain"] = json!("ghost.example.com");
    refused(
        &call(&sim, Method::POST, "/reserved_domains", Some(create_ghost)).await,
        404,
        "ERR_NGROK_1965",
    );
    // Nothing above changed the account.
    assert_eq!(
        sim.with_account(|a| (a.certificates.len(), a.domains.len())),
        (2, 2)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ngrok_owned_domains_take_neither_policy_nor_uploaded_certificate() {
    let sim = account().await;
    let cert = certificate_of(&sim, "up.example.com");
    let policy = json!({"authority": "letsencrypt", "private_key_type": "ecdsa"});
    // ngrok's own domains take neither, regional ngrok.io names included.
    for name in [
        "a.ngrok.app",
        "b.ngrok-free.dev",
        "c.eu.ngrok.io",
        "d.ngrok.pizza",
        "e.ngrok-free.app",
    ] {
        let with_policy = json!({"domain": name, "certificate_management_policy": policy});
        refused(
            &call(&sim, Method::POST, "/reserved_domains", Some(with_policy)).await,
            400,
            "ERR_NGROK_439",
        );
        let with_cert = json!({"domain": name, "certificate_id": cert});
        refused(
            &call(&sim, Method::POST, "/reserved_domains", Some(with_cert)).await,
            400,
            "ERR_NGROK_440",
        );
    }
    let plain = call(
        &sim,
        Method::POST,
        "/reserved_domains",
        Some(json!({"domain": "f.ngrok.app"})),
    )
    .await;
    assert_eq!(plain.0, 201, "{}", plain.1);
    assert!(
        plain.1["certificate_management_policy"].is_null(),
        "{}",
        plain.1
    );
    assert!(plain.1["cname_target"].is_null(), "{}", plain.1);
    let f = plain.1["id"].as_str().unwrap();
    refused(
        &call(
            &sim,
            Method::PATCH,
            &format!("/reserved_domains/{f}"),
            Some(json!({"certificate_management_policy": policy})),
        )
        .await,
        400,
        "ERR_NGROK_439",
    );
    refused(
        &call(
            &sim,
            Method::PATCH,
            &format!("/reserved_domains/{f}"),
            Some(json!({"certificate_id": cert})),
        )
        .await,
        400,
        "ERR_NGROK_440",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn managed_certificates_go_with_their_policy_and_are_not_deleted_directly() {
    let sim = account().await;
    let le = certificate_of(&sim, "m.example.com");
    let up = certificate_of(&sim, "up.example.com");
    let managed = domain_id(&sim, "m.example.com");
    refused(
        &call(
            &sim,
            Method::DELETE,
            &format!("/tls_certificates/{le}"),
            None,
        )
        .await,
        400,
        "ERR_NGROK_1966",
    );
    // Taking a domain over is two steps: detach the policy (its certificate goes with it), then
    // attach the uploaded certificate.
    let path = format!("/reserved_domains/{managed}/certificate_management_policy");
    assert_eq!(call(&sim, Method::DELETE, &path, None).await.0, 204);
    let (status, domain) = call(
        &sim,
        Method::GET,
        &format!("/reserved_domains/{managed}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(domain["certificate"].is_null(), "{domain}");
    assert!(
        domain["certificate_management_policy"].is_null(),
        "{domain}"
    );
    assert!(
        domain["certificate_management_status"].is_null(),
        "{domain}"
    );
    assert_eq!(
        call(&sim, Method::GET, &format!("/tls_certificates/{le}"), None)
            .await
            .0,
        404
    );
    let patch = json!({"certificate_id": up});
    let (status, domain) = call(
        &sim,
        Method::PATCH,
        &format!("/reserved_domains/{managed}"),
        Some(patch),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(domain["certificate"]["id"], up.as_str());
    // An uploaded certificate can be deleted, even in use.
    assert_eq!(
        call(
            &sim,
            Method::DELETE,
            &format!("/tls_certificates/{up}"),
            None
        )
        .await
        .0,
        204
    );
}

/// `GET /_sim/violations`: the list, as `Sim::violations` has it.
async fn violations(sim: &Sim) -> Vec<Value> {
    let (status, body) = call(sim, Method::GET, "/_sim/violations", None).await;
    assert_eq!(status, 200, "{body}");
    let listed = body["violations"].as_array().unwrap().clone();
    assert_eq!(listed.len(), sim.violations().len());
    listed
}

#[tokio::test(flavor = "multi_thread")]
async fn safety_violations_are_recorded_outside_the_take_over_window() {
    let sim = account().await;
    let up = certificate_of(&sim, "up.example.com");
    let (managed, plain) = (
        domain_id(&sim, "m.example.com"),
        domain_id(&sim, "up.example.com"),
    );
    // A take-over: no certificate between the policy's removal and the attach is allowed.
    let path = format!("/reserved_domains/{managed}/certificate_management_policy");
    assert_eq!(call(&sim, Method::DELETE, &path, None).await.0, 204);
    let patch = json!({"certificate_id": up});
    let path = format!("/reserved_domains/{managed}");
    assert_eq!(call(&sim, Method::PATCH, &path, Some(patch)).await.0, 200);
    assert!(violations(&sim).await.is_empty(), "{:?}", sim.violations());
    // Detaching an uploaded certificate leaves the domain without one.
    let path = format!("/reserved_domains/{plain}/certificate");
    assert_eq!(call(&sim, Method::DELETE, &path, None).await.0, 204);
    // Deleting the certificate the taken-over domain is on.
    let path = format!("/tls_certificates/{up}");
    assert_eq!(call(&sim, Method::DELETE, &path, None).await.0, 204);
    let listed = violations(&sim).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["kind"], "domain_left_without_certificate");
    assert_eq!(listed[0]["domain"], "up.example.com");
    assert_eq!(listed[0]["certificate_id"], up.as_str());
    assert_eq!(listed[1]["kind"], "certificate_deleted_while_attached");
    assert_eq!(listed[1]["domain"], "m.example.com");
    assert_eq!(listed[1]["domain_id"], managed.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_pems_and_mismatched_keys_have_their_codes() {
    let sim = account().await;
    let signer = ngrok_cert_watchdog::model::certs::generate::Signer::new("CA").unwrap();
    let (a, b) = (
        common::generate(&signer, &["k.example.com"], -1, 9),
        common::generate(&signer, &["k.example.com"], -1, 9),
    );
    let garbage = json!({"certificate_pem": "garbage", "private_key_pem": a.key_pem});
    refused(
        &call(&sim, Method::POST, "/tls_certificates", Some(garbage)).await,
        400,
        "ERR_NGROK_1920",
    );
    let bad_key = json!({"certificate_pem": a.chain_pem, "private_key_pem": "garbage"});
    refused(
        &call(&sim, Method::POST, "/tls_certificates", Some(bad_key)).await,
        400,
        "ERR_NGROK_1920",
    );
    let mismatch = json!({"certificate_pem": a.chain_pem, "private_key_pem": b.key_pem});
    refused(
        &call(&sim, Method::POST, "/tls_certificates", Some(mismatch)).await,
        400,
        "ERR_NGROK_1923",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seeded_account_has_an_undeletable_dev_domain() {
    let sim = common::seeded("[[domain]]\ndomain = \"a.example.com\"\n").await;
    let (status, list) = call(&sim, Method::GET, "/reserved_domains", None).await;
    assert_eq!(status, 200);
    let domains = list["reserved_domains"].as_array().unwrap();
    assert_eq!(domains.len(), 2, "{list}");
    let dev: Vec<&Value> = domains.iter().filter(|d| d["is_dev"] == true).collect();
    assert_eq!(dev.len(), 1, "{list}");
    assert!(
        dev[0]["domain"]
            .as_str()
            .unwrap()
            .ends_with(".ngrok-free.dev"),
        "{list}"
    );
    assert!(dev[0]["cname_target"].is_null(), "{list}");
    assert!(dev[0]["certificate_management_policy"].is_null(), "{list}");
    let id = dev[0]["id"].as_str().unwrap();
    refused(
        &call(
            &sim,
            Method::DELETE,
            &format!("/reserved_domains/{id}"),
            None,
        )
        .await,
        400,
        "ERR_NGROK_458",
    );
    assert_eq!(
        call(&sim, Method::GET, &format!("/reserved_domains/{id}"), None)
            .await
            .0,
        200
    );
    // Other domains are not dev domains, and can be deleted.
    let other = domains.iter().find(|d| d["is_dev"] == false).unwrap();
    let path = format!("/reserved_domains/{}", other["id"].as_str().unwrap());
    assert_eq!(call(&sim, Method::DELETE, &path, None).await.0, 204);
    // `dev_domain = false` leaves it out.
    let without = common::seeded("dev_domain = false\n").await;
    let (_, list) = call(&without, Method::GET, "/reserved_domains", None).await;
    assert_eq!(list["reserved_domains"], json!([]), "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_custom_domain_gets_a_managed_ecdsa_policy() {
    let sim = common::sim().await;
    let (status, d) = call(
        &sim,
        Method::POST,
        "/reserved_domains",
        Some(json!({"domain": "bare.example.com"})),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    assert_eq!(
        d["certificate_management_policy"],
        json!({"authority": "letsencrypt", "private_key_type": "ecdsa"})
    );
    assert!(d["certificate"].is_null(), "{d}");
    assert!(d["cname_target"].is_string(), "{d}");
    let job = &d["certificate_management_status"]["provisioning_job"];
    assert!(
        job["msg"].is_string() && job["started_at"].is_string(),
        "{d}"
    );
    // A policy without a key type defaults to ECDSA too.
    let (_, d) = call(
        &sim,
        Method::POST,
        "/reserved_domains",
        Some(json!({"domain": "le.example.com", "certificate_management_policy": {"authority": "letsencrypt"}})),
    )
    .await;
    assert_eq!(
        d["certificate_management_policy"]["private_key_type"], "ecdsa",
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamps_are_whole_seconds_and_null_status_is_seedable() {
    let sim = common::seeded(
        r#"
        [[domain]]
        domain = "m.example.com"
        managed = true
        renews_at = "+30d"
        job = { msg = "in progress", started_at = "-90m" }
        [[domain]]
        domain = "old.example.com"
        managed = true
        null_status = true
        created_at = "-400d"
        "#,
    )
    .await;
    let (_, cred) = call(&sim, Method::POST, "/credentials", Some(json!({}))).await;
    let (_, list) = call(&sim, Method::GET, "/reserved_domains", None).await;
    let m = list["reserved_domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "m.example.com")
        .unwrap();
    let status = &m["certificate_management_status"];
    for t in [
        &cred["created_at"],
        &m["created_at"],
        &status["renews_at"],
        &status["provisioning_job"]["started_at"],
    ] {
        let t = t.as_str().unwrap();
        assert!(!t.contains('.'), "{t} has a fraction of a second");
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    }
    let old = list["reserved_domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "old.example.com")
        .unwrap();
    assert!(old["certificate_management_policy"].is_object(), "{old}");
    assert!(old["certificate_management_status"].is_null(), "{old}");
    assert!(old["certificate"].is_null(), "{old}");
    let created = time::OffsetDateTime::parse(
        old["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        time::OffsetDateTime::now_utc() - created > time::Duration::days(399),
        "{old}"
    );
}

/// A simulator with its own options on 127.0.0.1:0.
async fn sim_with(options: SimOptions) -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sim::start(
        listener,
        SecretString::from(common::KEY.to_string()),
        options,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn more_simultaneous_requests_than_allowed_get_225() {
    let sim = sim_with(SimOptions {
        max_concurrent: Some(2),
        ..SimOptions::default()
    })
    .await;
    sim.inject(Fault {
        path: "/credentials".into(),
        method: Some("GET".into()),
        count: 2,
        kind: FaultKind::Latency { millis: 1500 },
    });
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let sim_url = sim.url();
            tokio::spawn(async move {
                let res = common::http()
                    .get(format!("{sim_url}/credentials"))
                    .bearer_auth(common::KEY)
                    .header("Ngrok-Version", "2")
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            })
        })
        .collect();
    // Let both slow requests reach the simulator and hold their slots.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let third = call(&sim, Method::GET, "/tls_certificates", None).await;
    refused(&third, 429, "ERR_NGROK_225");
    assert!(
        third.1["msg"]
            .as_str()
            .unwrap()
            .contains("limited to 2 simultaneous"),
        "{}",
        third.1
    );
    // The control endpoints are exempt.
    let control = common::http()
        .get(format!("{}/_sim/requests", sim.url()))
        .bearer_auth(common::KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), 200);
    for s in slow {
        assert_eq!(s.await.unwrap(), 200);
    }
    // Once they are answered, requests are accepted again; the log has every status.
    assert_eq!(
        call(&sim, Method::GET, "/tls_certificates", None).await.0,
        200
    );
    let statuses: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| !r.path.starts_with("/_sim"))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn more_requests_per_window_than_allowed_get_226() {
    let sim = sim_with(SimOptions {
        rate_limit: Some(RateLimit {
            requests: 2,
            window: Duration::from_secs(60),
        }),
        ..SimOptions::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(call(&sim, Method::GET, "/credentials", None).await.0, 200);
    }
    refused(
        &call(&sim, Method::GET, "/credentials", None).await,
        429,
        "ERR_NGROK_226",
    );
}
