//! Request signing (RFC 9421) for API keys registered with an Ed25519 public
//! key: their sensitive requests need a signature over the method, the
//! target URI and the body's digest, fresh and used once; the documented
//! shell recipe (docs/examples/sign-request.sh, openssl and curl) works.

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{spare_port, Resp, TestApp};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The headers of a signed request, made `age_secs` ago.
fn sign(key: &SigningKey, keyid: &str, method: &str, url: &str, body: &[u8], created: i64) -> Vec<(String, String)> {
    let digest = format!("sha-256=:{}:", b64(&Sha256::digest(body)));
    let params = format!(r#"("@method" "@target-uri" "content-digest");created={created};keyid="{keyid}";alg="ed25519""#);
    let base = format!("\"@method\": {method}\n\"@target-uri\": {url}\n\"content-digest\": {digest}\n\"@signature-params\": {params}");
    let signature = key.sign(base.as_bytes());
    vec![
        ("content-digest".into(), digest),
        ("signature-input".into(), format!("sig1={params}")),
        ("signature".into(), format!("sig1=:{}:", b64(&signature.to_bytes()))),
    ]
}

async fn send(app: &TestApp, token: &str, path: &str, body: &Value, headers: &[(String, String)]) -> Resp {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.send(Method::POST, path, Some(token), Some(body.clone()), &h).await
}

#[tokio::test]
async fn a_signing_key_signs_its_sensitive_requests() {
    let port = spare_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(|c| {
        c.bind = format!("127.0.0.1:{port}").parse().expect("addr");
        c.public_url = Some(base.clone());
    })
    .await;
    let owner = app.admin().await;
    let signing = SigningKey::from_bytes(&[7u8; 32]);
    let public = b64(signing.verifying_key().as_bytes());
    app.post("/api/v1/api-keys", &owner.token, json!({ "name": "bad", "role": "admin", "public_key": "c2hvcnQ=" }))
        .await
        .problem(422, "validation_failed");
    let created = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "automation", "role": "admin", "public_key": public })).await;
    let created = created.expect(201);
    assert_eq!(created.body["public_key"], json!(public));
    let (keyid, key) = (created.str("id"), created.str("key"));

    // Reading needs no signature; a sensitive request does.
    app.get("/api/v1/incidents", &key).await.expect(200);
    let body = json!({ "name": "child", "role": "viewer" });
    let bytes = serde_json::to_vec(&body).expect("json");
    send(&app, &key, "/api/v1/api-keys", &body, &[]).await.problem(403, "signature_required");

    let url = format!("{base}/api/v1/api-keys");
    let now = app.clock.now().0 / 1000;
    let headers = sign(&signing, &keyid, "POST", &url, &bytes, now);
    send(&app, &key, "/api/v1/api-keys", &body, &headers).await.expect(201);
    // Each signature once.
    send(&app, &key, "/api/v1/api-keys", &body, &headers).await.problem(401, "signature_invalid");
    // A body that is not the one signed.
    let other = json!({ "name": "other", "role": "admin" });
    send(&app, &key, "/api/v1/api-keys", &other, &sign(&signing, &keyid, "POST", &url, &bytes, now + 1))
        .await
        .problem(400, "digest_mismatch");
    // Stale, another target, another key, another key id.
    send(&app, &key, "/api/v1/api-keys", &body, &sign(&signing, &keyid, "POST", &url, &bytes, now - 600))
        .await
        .problem(401, "signature_invalid");
    let elsewhere = format!("{base}/api/v1/incidents");
    send(&app, &key, "/api/v1/api-keys", &body, &sign(&signing, &keyid, "POST", &elsewhere, &bytes, now + 2))
        .await
        .problem(401, "signature_invalid");
    let stranger = SigningKey::from_bytes(&[9u8; 32]);
    send(&app, &key, "/api/v1/api-keys", &body, &sign(&stranger, &keyid, "POST", &url, &bytes, now + 3))
        .await
        .problem(401, "signature_invalid");
    send(&app, &key, "/api/v1/api-keys", &body, &sign(&signing, "key_other", "POST", &url, &bytes, now + 4))
        .await
        .problem(401, "signature_invalid");
    let mut garbled = sign(&signing, &keyid, "POST", &url, &bytes, now + 5);
    garbled[1].1 = "sig1=(\"@method\");created=1".into();
    send(&app, &key, "/api/v1/api-keys", &body, &garbled).await.problem(401, "signature_invalid");

    // The documented recipe, with openssl and curl.
    let tools = [("openssl", "version"), ("curl", "--version")]
        .iter()
        .all(|(t, v)| std::process::Command::new(t).arg(v).output().is_ok_and(|o| o.status.success()));
    if !tools {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must provide openssl and curl");
        eprintln!("openssl or curl is missing: the signing recipe is not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = dir.path().join("signing.pem");
    let ok = std::process::Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&pem).status().expect("openssl");
    assert!(ok.success());
    let der =
        std::process::Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&pem).output().expect("openssl");
    let public = b64(&der.stdout[der.stdout.len() - 32..]);
    let created =
        app.post("/api/v1/api-keys", &owner.token, json!({ "name": "shell", "role": "admin", "public_key": public })).await.expect(201);
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, br#"{"name": "from the recipe", "role": "viewer"}"#).expect("body");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/sign-request.sh");
    // Not blocking the runtime: the server answers on it.
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .args(["POST", &url])
        .arg(&body_file)
        .args([created.str("id"), created.str("key")])
        .arg(&pem)
        .output()
        .await
        .expect("run the recipe");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(answer["name"], json!("from the recipe"), "{answer}");
}
