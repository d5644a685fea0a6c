//! The simulator's responses carry every field of the documented examples with the documented
//! JSON type, and nothing the client reads is spelt differently: compared key by key with
//! tests/fixtures/ngrok-api-examples/.

mod common;

use serde_json::Value;

fn example(name: &str) -> Option<Value> {
    let path = format!(
        "{}/tests/fixtures/ngrok-api-examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `documented` is in `ours` with the same type; null on either side is accepted
/// where the other is an object or string (an optional field). Objects are compared deeply.
fn same_shape(documented: &Value, ours: &Value, at: &str) {
    let (Value::Object(d), Value::Object(o)) = (documented, ours) else {
        panic!("{at}: expected objects");
    };
    for (key, dv) in d {
        // The examples omit empty optional strings in lists, and so do we; a documented
        // description/metadata may be absent in ours when empty.
        let Some(ov) = o.get(key) else {
            assert!(
                matches!(key.as_str(), "description" | "metadata"),
                "{at}.{key} is documented but the simulator does not send it"
            );
            continue;
        };
        match (dv, ov) {
            (Value::Object(_), Value::Object(_)) => same_shape(dv, ov, &format!("{at}.{key}")),
            (Value::Null, _) | (_, Value::Null) => {}
            (Value::Array(da), Value::Array(oa)) => {
                if let (Some(d0), Some(o0)) = (da.first(), oa.first()) {
                    if d0.is_object() {
                        same_shape(d0, o0, &format!("{at}.{key}[0]"));
                    } else {
                        assert_eq!(kind(d0), kind(o0), "{at}.{key}[0]");
                    }
                }
            }
            _ => assert_eq!(kind(dv), kind(ov), "{at}.{key}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_have_the_documented_shape() {
    let Some(get_cert) = example("get_tls_certificate.response.json") else {
        panic!("tests/fixtures/ngrok-api-examples is missing beside the project");
    };
    let sim = common::seeded(
        r#"
        [[certificate]]
        name = "c"
        dns_names = ["a.example.com"]
        description = "d"
        metadata = "{}"
        [[domain]]
        domain = "a.example.com"
        certificate = "c"
        description = "d"
        metadata = "{}"
        [[domain]]
        domain = "m.example.com"
        managed = true
        renews_at = "+30d"
        job = { msg = "in progress", started_at = "-1h" }
        [[credential]]
        description = "x"
        acl = ["bind:a.example.com"]
        "#,
    )
    .await;
    let http = common::http();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", sim.url());
        async move {
            let res = http
                .get(url)
                .bearer_auth(common::KEY)
                .header("Ngrok-Version", "2")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let certs = get("/tls_certificates".into()).await;
    same_shape(
        &example("list_tls_certificates.response.json").unwrap(),
        &certs,
        "list_tls_certificates",
    );
    let cert_id = certs["tls_certificates"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    same_shape(
        &get_cert,
        &get(format!("/tls_certificates/{cert_id}")).await,
        "get_tls_certificate",
    );

    let domains = get("/reserved_domains".into()).await;
    same_shape(
        &example("list_reserved_domains.response.json").unwrap(),
        &domains,
        "list_reserved_domains",
    );
    let managed = domains["reserved_domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "m.example.com")
        .unwrap();
    // The documented managed domain in the list carries a status with a provisioning job.
    let documented_managed =
        &example("list_reserved_domains.response.json").unwrap()["reserved_domains"][0];
    same_shape(documented_managed, managed, "managed reserved domain");
    let id = managed["id"].as_str().unwrap();
    same_shape(
        &example("get_reserved_domain.response.json").unwrap(),
        &get(format!("/reserved_domains/{id}")).await,
        "get_reserved_domain",
    );

    let creds = get("/credentials".into()).await;
    same_shape(
        &example("list_tunnel_credentials.response.json").unwrap(),
        &creds,
        "list_tunnel_credentials",
    );
    assert!(
        creds["credentials"][0]["token"].is_null(),
        "a listed credential never shows its token"
    );

    // Empty optional strings are omitted, as in the documented lists.
    let created = http
        .post(format!("{}/credentials", sim.url()))
        .bearer_auth(common::KEY)
        .header("Ngrok-Version", "2")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    same_shape(
        &example("create_tunnel_credential.response.json").unwrap(),
        &created,
        "create_tunnel_credential",
    );
    assert!(created.get("description").is_none(), "{created}");
    assert!(created["token"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_400() {
    let sim = common::seeded(
        "dev_domain = false\n[[certificate]]\nname = \"c\"\ndns_names = [\"a.example.com\"]\n",
    )
    .await;
    let cert_id = sim.with_account(|a| a.certificates.keys().next().unwrap().clone());
    let http = common::http();
    let send = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", sim.url()))
            .bearer_auth(common::KEY)
            .header("Ngrok-Version", "2")
            .json(&body)
            .send()
    };
    let long = "x".repeat(256);
    let cases = [
        (
            reqwest::Method::POST,
            "/credentials",
            serde_json::json!({"description": long}),
        ),
        (
            reqwest::Method::POST,
            "/credentials",
            serde_json::json!({"metadata": "m".repeat(4097)}),
        ),
        (
            reqwest::Method::POST,
            "/reserved_domains",
            serde_json::json!({"domain": "b.example.com", "certificate_id": cert_id, "certificate_management_policy": {"authority": "letsencrypt"}}),
        ),
        (
            reqwest::Method::POST,
            "/tls_certificates",
            serde_json::json!({"certificate_pem": "garbage", "private_key_pem": "garbage"}),
        ),
    ];
    for (method, path, body) in cases {
        let res = send(method.clone(), path, body.clone()).await.unwrap();
        assert_eq!(res.status(), 400, "{method} {path} {body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["status_code"], 400);
        assert!(err["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A key that does not match the certificate.
    let signer = ngrok_cert_watchdog::model::certs::generate::Signer::new("CA").unwrap();
    let names = vec!["k.example.com".to_string()];
    let spec = ngrok_cert_watchdog::model::certs::generate::Spec {
        common_name: &names[0],
        dns_names: &names,
        not_before: time::OffsetDateTime::now_utc(),
        not_after: time::OffsetDateTime::now_utc() + time::Duration::days(9),
    };
    let (a, b) = (
        signer.generate(&spec).unwrap(),
        signer.generate(&spec).unwrap(),
    );
    let res = send(
        reqwest::Method::POST,
        "/tls_certificates",
        serde_json::json!({"certificate_pem": a.chain_pem, "private_key_pem": b.key_pem}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(
        !body.contains("PRIVATE KEY"),
        "the key is never echoed: {body}"
    );
    // Unknown ids are 404.
    let res = send(
        reqwest::Method::PATCH,
        "/reserved_domains/rd_nope",
        serde_json::json!({}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    // Nothing was created by any refused request.
    assert_eq!(
        sim.with_account(|a| (a.certificates.len(), a.domains.len(), a.credentials.len())),
        (1, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_certificate_id_is_404_err_ngrok_1965() {
    // Was 400 in the bad-input list above; ngrok documents ERR_NGROK_1965 (its status is a guess).
    let sim = common::seeded("dev_domain = false\n").await;
    let res = common::http()
        .post(format!("{}/reserved_domains", sim.url()))
        .bearer_auth(common::KEY)
        .header("Ngrok-Version", "2")
        .json(
            &serde_json::json!({"domain": "b.example.com", "certificate_id": "cert_doesnotexist"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error_code"], "ERR_NGROK_1965");
    assert!(err["msg"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        sim.with_account(|a| a.domains.len()),
        0,
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_id_is_404_err_ngrok_222_and_an_unknown_endpoint_is_not() {
    // ERR_NGROK_222 is what an official client's recorded 404 for an unknown id shows.
    let sim = common::seeded("dev_domain = false\n").await;
    let get = |path: String| {
        common::http()
            .get(format!("{}{path}", sim.url()))
            .bearer_auth(common::KEY)
            .header("Ngrok-Version", "2")
            .send()
    };
    for path in [
        "/tls_certificates/cert_doesnotexist",
        "/reserved_domains/rd_doesnotexist",
        "/credentials/cr_doesnotexist",
    ] {
        let res = get(path.to_string()).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error_code"], "ERR_NGROK_222", "{path}");
    }
    let res = get("/no_such_resource".into()).await.unwrap();
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error_code"], "ERR_NGROK_SIM_404");
}
