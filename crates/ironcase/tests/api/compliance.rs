//! Compliance reports: each framework's controls judged from the
//! organisation's live settings and data, changing as they change; only
//! for those who may read the audit log; audited; the other tenant's data
//! never counted.

use serde_json::{json, Value};

use crate::helpers::{TestApp, PASSWORD};

fn control<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["controls"].as_array().expect("controls").iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no control {id} in {r}"))
}

fn check<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["checks"].as_array().expect("checks").iter().find(|k| k["check"] == name).unwrap_or_else(|| panic!("no check {name} in {c}"))
}

#[tokio::test]
async fn reports_follow_the_organisations_settings_and_data() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let operator = app.admin().await;
    let (_, owner) = app.org(&operator, "comply").await;
    let viewer = app.member(&owner, "viewer@comply.test", "viewer", Some("comply")).await;
    // The other organisation's incidents are not this one's figures.
    for _ in 0..3 {
        app.post("/api/v1/incidents", &operator.token, json!({ "title": "theirs", "severity": "critical", "category": "malware" }))
            .await
            .expect(201);
    }
    let inc = app
        .post("/api/v1/incidents", &owner.token, json!({ "title": "ours", "severity": "critical", "category": "malware" }))
        .await
        .expect(201)
        .str("id");

    for f in ["soc2", "iso27001", "nist-csf", "gdpr", "ccpa"] {
        let r = app.get(&format!("/api/v1/compliance/{f}"), &owner.token).await.expect(200);
        assert_eq!(r.body["framework"], f);
        let s = &r.body["summary"];
        let total = ["met", "partly", "not_met", "not_applicable"].iter().map(|k| s[k].as_u64().expect("count")).sum::<u64>();
        assert_eq!(total as usize, r.body["controls"].as_array().expect("controls").len());
    }
    app.get("/api/v1/compliance/hipaa", &owner.token).await.problem(404, "not_found");
    app.get("/api/v1/compliance/soc2", &viewer.token).await.problem(403, "forbidden");

    let r = app.get("/api/v1/compliance/soc2", &owner.token).await.expect(200).body;
    let cc61 = control(&r, "CC6.1");
    assert_eq!(cc61["status"], "not_met", "no second factor required, no SSO: {cc61}");
    assert_eq!(check(cc61, "mfa")["figures"]["members"], 2);
    assert_eq!(check(cc61, "mfa")["action"].as_str().map(|a| a.contains("mfa-policy")), Some(true));
    assert_eq!(check(control(&r, "CC7.2"), "read_auditing")["status"], "partly");
    let ir = check(control(&r, "CC7.4"), "incident_response");
    assert_eq!(
        (ir["status"].clone(), ir["figures"]["open"].clone(), ir["figures"]["open_past_target"].clone()),
        (json!("met"), json!(1), json!(0))
    );
    assert_eq!(control(&r, "C1.2")["status"], "not_met", "everything kept forever");
    assert_eq!(control(&r, "A1.2")["status"], "not_applicable");

    // Settings change, and so does the report.
    app.put_json("/api/v1/organization/audit-reads", &owner.token, json!({ "enabled": true })).await.expect(200);
    let policies = json!({ "policies": [{ "kind": "closed_incidents", "days": 365 }, { "kind": "audit", "days": 2555 }] });
    app.put_json("/api/v1/retention", &owner.token, policies).await.expect(200);
    let aware = ironcase_domain::Timestamp(app.clock.now().0 - 80 * 3_600_000).to_rfc3339();
    app.put_json(&format!("/api/v1/incidents/{inc}/breach"), &owner.token, json!({ "aware_at": aware })).await.expect(200);
    // Four days on, the critical incident is past its three-day target.
    app.clock.advance_secs(4 * 86_400);
    let owner = app.login("owner@comply.test", PASSWORD, Some("comply")).await;
    let r = app.get("/api/v1/compliance/gdpr", &owner.token).await.expect(200).body;
    assert_eq!(control(&r, "Art. 5(1)(e)")["status"], "met");
    assert_eq!(check(control(&r, "Art. 5(2)"), "read_auditing")["status"], "met");
    let art33 = control(&r, "Art. 33");
    assert_eq!((art33["status"].clone(), art33["checks"][0]["figures"]["overdue"].clone()), (json!("not_met"), json!(1)));
    let r = app.get("/api/v1/compliance/iso27001", &owner.token).await.expect(200).body;
    let ir = check(control(&r, "A.5.26"), "incident_response");
    assert_eq!((ir["status"].clone(), ir["figures"]["open_past_target"].clone()), (json!("not_met"), json!(1)), "{ir}");

    // Every report made is in the audit log.
    let log = app.get("/api/v1/audit?action=compliance.report", &owner.token).await.expect(200).body;
    let frameworks: Vec<_> = log["items"].as_array().expect("items").iter().map(|e| e["details"]["framework"].clone()).collect();
    assert_eq!(frameworks.len(), 8, "{frameworks:?}");
    assert_eq!(frameworks[0], "iso27001");
    assert_eq!(log["items"][0]["category"], "compliance");
}
