//! Personal data breaches under a frozen clock: the GDPR Art. 33 deadline,
//! its warnings at 48 h, 66 h and past 72 h (each once, as events on the
//! incident's timeline for webhooks and channels), and the regulator's
//! notification that ends them.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{TestApp, User, PASSWORD};

const HOUR: i64 = 3600;

/// The incident's deadline warnings so far (their stages), once the job had
/// time to raise `want` of them (at most 10 s).
async fn warnings(app: &TestApp, u: &User, inc: &str, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..100 {
        let t = app.get(&format!("/api/v1/incidents/{inc}/timeline?limit=200"), &u.token).await.expect(200);
        got = t.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["type"] == "incident.breach_deadline")
            .map(|e| e["data"]["stage"].as_str().expect("stage").to_owned())
            .collect();
        if got.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test]
async fn a_breach_has_its_72_hour_deadline_warned_once_at_each_stage_until_notified() {
    let app = TestApp::spawn_with(|c| c.breach_check_seconds = 1).await;
    app.clock.freeze();
    let owner = app.admin().await;
    let viewer = app.member(&owner, "viewer@localhost", "viewer", None).await;
    let inc = app.incident(&owner, "customer records exfiltrated").await.str("id");
    let path = format!("/api/v1/incidents/{inc}/breach");
    app.post("/api/v1/webhooks", &owner.token, json!({ "url": "https://93.184.215.14/dpo", "event_types": ["incident.breach_deadline"] }))
        .await
        .expect(201);

    app.get(&path, &owner.token).await.problem(404, "not_found");
    app.put_json(&path, &viewer.token, json!({})).await.problem(403, "forbidden");
    let future = ironcase_domain::Timestamp(app.clock.now().0 + 3_600_000).to_rfc3339();
    let r = app.put_json(&path, &owner.token, json!({ "aware_at": future })).await.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "aware_at");
    let now = app.clock.now();
    let r = app
        .put_json(
            &path,
            &owner.token,
            json!({ "aware_at": now.to_rfc3339(), "regulator_notified_at": ironcase_domain::Timestamp(now.0 - 1000).to_rfc3339() }),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "regulator_notified_at");

    let b = app.put_json(&path, &owner.token, json!({})).await.expect(200);
    assert_eq!(b.body["state"], "open");
    assert_eq!(b.body["aware_at"], now.to_rfc3339());
    assert_eq!(b.body["deadline"], ironcase_domain::Timestamp(now.0 + 72 * HOUR * 1000).to_rfc3339());
    assert_eq!(app.get(&path, &viewer.token).await.expect(200).body, b.body);
    let listed = app.get("/api/v1/breaches?open=true", &viewer.token).await.expect(200);
    assert_eq!(listed.body["items"][0]["incident_id"], inc.as_str());
    assert_eq!(app.get("/api/v1/breaches?open=false", &viewer.token).await.expect(200).body["items"], json!([]));
    let timeline = app.get(&format!("/api/v1/incidents/{inc}/timeline"), &owner.token).await.expect(200);
    assert!(timeline.body.to_string().contains("incident.breach_flagged"));
    assert!(warnings(&app, &owner, &inc, 0).await.is_empty());

    // 48 h, 66 h, 72 h: one warning each, whatever the number of rounds.
    let mut owner = owner;
    for (hours, want) in [(47, vec![]), (1, vec!["48h"]), (18, vec!["48h", "66h"]), (6, vec!["48h", "66h", "overdue"])] {
        app.clock.advance_secs(hours * HOUR);
        owner = app.login("admin@localhost", &app.admin_password.clone(), None).await;
        let got = warnings(&app, &owner, &inc, want.len()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(warnings(&app, &owner, &inc, want.len()).await, got, "no second warning for a stage");
        assert_eq!(got, want, "after {hours} more hours");
    }
    let overdue = app.get(&path, &owner.token).await.expect(200);
    assert_eq!((overdue.body["state"].clone(), overdue.body["warnings"].clone()), (json!("overdue"), json!(3)));
    let log = app.get("/api/v1/audit?action=privacy.breach_deadline", &owner.token).await.expect(200);
    assert_eq!(log.body["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(log.body["items"][0]["actor_kind"], "system");

    // Told, late: recorded with its reference; the breach is no longer open.
    let told = app.clock.now().to_rfc3339();
    let b = app
        .put_json(&path, &owner.token, json!({ "aware_at": now.to_rfc3339(), "regulator_notified_at": told, "reference": "DPA-2026-118" }))
        .await
        .expect(200);
    assert_eq!((b.body["state"].clone(), b.body["reference"].clone()), (json!("notified"), json!("DPA-2026-118")));
    assert_eq!(app.get("/api/v1/breaches?open=true", &owner.token).await.expect(200).body["items"], json!([]));
    let audit: Value = app.get("/api/v1/audit?action=privacy.breach", &owner.token).await.expect(200).body;
    assert_eq!(audit["items"][0]["details"]["reference"], "DPA-2026-118");
    assert_eq!(audit["items"][0]["category"], "compliance");

    let viewer = app.login("viewer@localhost", PASSWORD, None).await;
    app.delete(&path, &viewer.token).await.problem(403, "forbidden");
    app.delete(&path, &owner.token).await.expect(204);
    app.get(&path, &owner.token).await.problem(404, "not_found");
}

#[tokio::test]
async fn deadline_warnings_reach_notification_channels() {
    let Some(rx) = crate::webhooks::Receiver::start() else { return };
    let app = TestApp::spawn_with(|c| {
        c.breach_check_seconds = 1;
        c.webhook_allow_private = true;
        c.webhook_allow_http = true;
    })
    .await;
    app.clock.freeze();
    let owner = app.admin().await;
    let rules = json!([{ "event_types": ["incident.breach_deadline"] }]);
    app.post(
        "/api/v1/notification-channels",
        &owner.token,
        json!({ "name": "DPO", "kind": "slack", "url": format!("{}/slack/T1/B1/dpo", rx.url), "rules": rules }),
    )
    .await
    .expect(201);
    let inc = app.incident(&owner, "payroll file emailed out").await.str("id");
    app.put_json(&format!("/api/v1/incidents/{inc}/breach"), &owner.token, json!({})).await.expect(200);
    app.clock.advance_secs(48 * HOUR);
    let log = rx.wait_for(1).await;
    let text = log[0]["body"]["text"].as_str().expect("a Slack message").to_owned();
    assert!(text.contains("Personal data breach, 48h") && text.contains("payroll file emailed out"), "{text}");
    app.clock.advance_secs(18 * HOUR);
    let log = rx.wait_for(2).await;
    assert!(log[1]["body"]["text"].as_str().is_some_and(|t| t.contains("66h")), "{log:?}");
}
