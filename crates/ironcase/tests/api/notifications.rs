//! Notification channels, delivered through the webhook outbox: Slack,
//! Teams and generic-webhook channels to the receiver of the webhook tests
//! (`standardwebhooks` checks the generic one's signatures), e-mail
//! channels to a real SMTP server (aiosmtpd), with rules, templates, a TLP
//! ceiling and members' preferences.

use serde_json::{json, Value};

use crate::email::{decode_qp, link, Smtp};
use crate::helpers::{TestApp, User, PASSWORD};
use crate::webhooks::{spawn, Receiver};

/// A channel's attempts once at least `n` are recorded (a receiver has a
/// message a moment before the server records the attempt); at most 10 s.
async fn recorded(app: &TestApp, user: &User, channel: &str, n: usize) -> Vec<Value> {
    let path = format!("/api/v1/notification-channels/{channel}/attempts");
    let mut items = Vec::new();
    for _ in 0..200 {
        items = app.get(&path, &user.token).await.expect(200).body["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    items
}

fn bodies(log: &[Value], path: &str) -> Vec<Value> {
    log.iter().filter(|d| d["path"] == path).map(|d| d["body"].clone()).collect()
}

#[tokio::test]
async fn slack_teams_and_generic_channels_carry_what_their_rules_take() {
    let Some(rx) = Receiver::start() else { return };
    let app = spawn().await;
    let owner = app.admin().await;

    // Slack: new incidents of high or critical severity, the default text.
    let slack = app
        .post(
            "/api/v1/notification-channels",
            &owner.token,
            json!({ "name": "SOC Slack", "kind": "slack", "url": format!("{}/slack/T000/B000/XXXX", rx.url),
                    "rules": [{ "event_types": ["incident.created"], "severities": ["high", "critical"] }] }),
        )
        .await
        .expect(201);
    assert_eq!(slack.body["secret"], Value::Null, "a Slack channel has no signing secret");
    // The incoming-webhook address is a secret: shown only as its host.
    let shown = app.get(&format!("/api/v1/notification-channels/{}", slack.str("id")), &owner.token).await.expect(200);
    assert_eq!(shown.body["url"], "http://127.0.0.1/…");
    assert!(!shown.body.to_string().contains("XXXX"));
    // Teams: everything, but nothing marked above green.
    app.post(
        "/api/v1/notification-channels",
        &owner.token,
        json!({ "name": "Teams", "kind": "teams", "url": format!("{}/teams", rx.url), "rules": [{ "event_types": ["*"] }], "max_tlp": "green" }),
    )
    .await
    .expect(201);
    // Generic: comments, with a template, signed.
    let generic = app
        .post(
            "/api/v1/notification-channels",
            &owner.token,
            json!({ "name": "Ticketing", "kind": "generic", "url": format!("{}/generic", rx.url),
                    "rules": [{ "event_types": ["comment.added"] }],
                    "template": "{{ incident.title | upper }} has a new comment ({{ type }})" }),
        )
        .await
        .expect(201);
    rx.control(json!({ "secrets": [generic.str("secret")] })).await;

    let high = app
        .post("/api/v1/incidents", &owner.token, json!({ "title": "<!channel> & payroll", "severity": "high", "category": "phishing" }))
        .await
        .expect(201);
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "Low noise", "severity": "low", "category": "other" })).await.expect(201);
    let green = app
        .post("/api/v1/incidents", &owner.token, json!({ "title": "Shared", "severity": "medium", "category": "other", "tlp": "green" }))
        .await
        .expect(201);
    app.post(&format!("/api/v1/incidents/{}/comments", high.str("id")), &owner.token, json!({ "body": "isolated" })).await.expect(201);

    let log = rx.wait_for(3).await;
    let slack_bodies = bodies(&log, "/slack/T000/B000/XXXX");
    assert_eq!(slack_bodies.len(), 1, "only the high one: {log:?}");
    let text = slack_bodies[0]["text"].as_str().unwrap_or("");
    assert!(text.starts_with("[HIGH] #1 &lt;!channel&gt; &amp; payroll\nNew incident"), "escaped for Slack: {text}");
    let teams = bodies(&log, "/teams");
    assert_eq!(teams.len(), 1, "only the green incident's creation: {log:?}");
    let card = &teams[0]["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert!(card["content"]["body"][1]["text"].as_str().unwrap_or("").contains("Shared"), "{card}");
    assert_eq!(green.body["tlp"], "green");
    let generic_log: Vec<&Value> = log.iter().filter(|d| d["path"] == "/generic").collect();
    assert_eq!(generic_log.len(), 1);
    assert_eq!(generic_log[0]["verified"], json!([true]), "signed as Standard Webhooks");
    assert_eq!(generic_log[0]["body"]["text"], "<!CHANNEL> & PAYROLL has a new comment (comment.added)");
    assert_eq!(generic_log[0]["body"]["type"], "comment.added");

    // The channel's own delivery log; it is not a webhook.
    let attempts = recorded(&app, &owner, &slack.str("id"), 1).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["success"], true);
    app.get(&format!("/api/v1/webhooks/{}", slack.str("id")), &owner.token).await.problem(404, "not_found");
    app.get(&format!("/api/v1/webhooks/{}/attempts", slack.str("id")), &owner.token).await.problem(404, "not_found");
    let listed = app.get("/api/v1/webhooks", &owner.token).await.expect(200);
    assert_eq!(listed.body["items"], json!([]), "channels are not listed as webhooks");
    let channels = app.get("/api/v1/notification-channels", &owner.token).await.expect(200);
    assert_eq!(channels.body["items"].as_array().map(Vec::len), Some(3));
    app.shutdown().await;
}

#[tokio::test]
async fn templates_are_previewed_and_bad_ones_refused() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let preview = app
        .post(
            "/api/v1/notification-channels/preview",
            &owner.token,
            json!({ "kind": "teams", "event_type": "incident.status_changed", "template": "{{ incident.title }}: {{ summary }}" }),
        )
        .await
        .expect(200);
    assert_eq!(preview.body["text"], "Phishing wave against finance: Status changed to contained");
    assert_eq!(preview.body["payload"]["attachments"][0]["content"]["type"], "AdaptiveCard");
    let email =
        app.post("/api/v1/notification-channels/preview", &owner.token, json!({ "kind": "email", "event_type": "incident.created" })).await;
    let email = email.expect(200);
    assert!(email.body["subject"].as_str().unwrap_or("").starts_with("[Ironcase] New incident"), "{}", email.body);

    for (template, why) in [
        ("{{ incident.title", "does not render"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}", "does not render"),
        ("{{ incident.title | no_such_filter }}", "does not render"),
    ] {
        let r = app
            .post(
                "/api/v1/notification-channels/preview",
                &owner.token,
                json!({ "kind": "slack", "event_type": "incident.created", "template": template }),
            )
            .await
            .problem(422, "validation_failed");
        assert!(r.body["errors"][0]["message"].as_str().unwrap_or("").contains(why), "{template}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "template");
    }
    let bad = [
        (json!({ "name": "x", "kind": "pager", "rules": [{ "event_types": ["*"] }] }), "kind"),
        (json!({ "name": "x", "kind": "email", "members": true, "rules": [{ "event_types": ["*"] }] }), "kind"),
        (
            json!({ "name": "x", "kind": "slack", "url": "https://hooks.example/x", "rules": [{ "event_types": ["*"], "assigned_to_me": true }] }),
            "rules[0].assigned_to_me",
        ),
        (
            json!({ "name": "x", "kind": "slack", "url": "https://hooks.example/x", "rules": [{ "event_types": ["incident.exploded"] }] }),
            "rules[0].event_types[0]",
        ),
        (json!({ "name": "x", "kind": "slack", "url": "https://hooks.example/x", "rules": [] }), "rules"),
        (json!({ "name": "x", "kind": "slack", "rules": [{ "event_types": ["*"] }] }), "url"),
        (json!({ "name": "x", "kind": "slack", "url": "http://127.0.0.1/x", "rules": [{ "event_types": ["*"] }] }), "url"),
        (
            json!({ "name": "x", "kind": "teams", "url": "https://hooks.example/x", "rules": [{ "event_types": ["*"] }], "recipients": ["a@b.example"] }),
            "recipients",
        ),
    ];
    for (body, field) in bad {
        let r = app.post("/api/v1/notification-channels", &owner.token, body.clone()).await.problem(422, "validation_failed");
        let fields: Vec<&str> = r.body["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
        assert!(fields.contains(&field), "{body}: {}", r.body);
    }
    assert_eq!(app.get("/api/v1/notification-channels", &owner.token).await.expect(200).body["items"], json!([]), "nothing was made");

    // Preferences: defaults, then set, with unknown types refused.
    let prefs = app.get("/api/v1/auth/notifications", &owner.token).await.expect(200);
    assert_eq!(prefs.body, json!({ "email": true, "event_types": ["*"], "only_assigned": false }));
    let set = json!({ "email": true, "event_types": ["incident.created", "incident.created"], "only_assigned": true });
    let r = app.put_json("/api/v1/auth/notifications", &owner.token, set).await.expect(200);
    assert_eq!(r.body["event_types"], json!(["incident.created"]));
    let r = app
        .put_json("/api/v1/auth/notifications", &owner.token, json!({ "email": true, "event_types": ["nope"], "only_assigned": false }))
        .await;
    r.problem(422, "validation_failed");
    assert_eq!(app.get("/api/v1/auth/notifications", &owner.token).await.expect(200).body["only_assigned"], true);
    app.shutdown().await;
}

/// A member invited by e-mail: the token from the invitation, accepted, logged in.
async fn member_by_mail(app: &TestApp, smtp: &Smtp, by: &User, email: &str, role: &str) -> User {
    app.post("/api/v1/members", &by.token, json!({ "email": email, "role": role })).await.expect(201);
    let mail = smtp.to(email, 1).await;
    let (_, token) = link(&mail[0]);
    app.accept(&token, PASSWORD).await.expect(201);
    app.login(email, PASSWORD, None).await
}

fn with_subject(mails: &[String], subject: &str) -> Vec<String> {
    mails.iter().map(|m| decode_qp(m)).filter(|m| m.lines().any(|l| l.starts_with("Subject: ") && l.contains(subject))).collect()
}

#[tokio::test]
async fn email_channels_follow_rules_and_each_members_preferences() {
    let Some(smtp) = Smtp::start() else { return };
    let url = smtp.url();
    let app = TestApp::spawn_with(move |c| {
        c.smtp_url = Some(ironcase_app::shared::SecretUrl::new(url));
        c.public_url = Some("https://ironcase.example".into());
    })
    .await;
    let owner = app.admin().await;
    let ana = member_by_mail(&app, &smtp, &owner, "ana@example.com", "analyst").await;
    let channel = app
        .post(
            "/api/v1/notification-channels",
            &owner.token,
            json!({ "name": "Mail", "kind": "email", "members": true, "recipients": ["soc@example.com"],
                    "subject": "IR: {{ incident.title }} ({{ type }})",
                    "rules": [{ "event_types": ["incident.created"] },
                              { "event_types": ["incident.status_changed"], "assigned_to_me": true }] }),
        )
        .await
        .expect(201);

    // A new incident: the team list and every member but the one who acted.
    let first = app.incident(&owner, "Beacon from HR laptop").await;
    let soc = smtp.to("soc@example.com", 1).await;
    let soc = with_subject(&soc, "IR: Beacon from HR laptop (incident.created)");
    assert_eq!(soc.len(), 1, "{soc:?}");
    assert!(soc[0].contains("https://ironcase.example/incidents/") && soc[0].contains("Choose what Ironcase e-mails you"), "{}", soc[0]);
    assert_eq!(with_subject(&smtp.to("ana@example.com", 2).await, "Beacon from HR laptop").len(), 1);
    assert!(with_subject(&smtp.to("admin@localhost", 0).await, "IR:").is_empty(), "not to the actor");

    // Ana wants only what is assigned to her: the next one reaches the list only.
    let only_mine = json!({ "email": true, "event_types": ["*"], "only_assigned": true });
    app.put_json("/api/v1/auth/notifications", &ana.token, only_mine).await.expect(200);
    app.incident(&owner, "Second beacon").await;
    assert_eq!(with_subject(&smtp.to("soc@example.com", 2).await, "Second beacon").len(), 1);

    // Assigned to Ana, then moved on: she hears of it (the assignee rule);
    // the list does not (that rule is for the assignee only).
    let id = first.str("id");
    app.patch(&format!("/api/v1/incidents/{id}"), &owner.token, json!({ "assignee_id": ana.id }), Some("\"1\"")).await.expect(200);
    app.patch(&format!("/api/v1/incidents/{id}"), &owner.token, json!({ "status": "triaged" }), Some("\"2\"")).await.expect(200);
    let ana_mail = with_subject(&smtp.to("ana@example.com", 3).await, "incident.status_changed");
    assert_eq!(ana_mail.len(), 1, "{ana_mail:?}");
    assert!(with_subject(&smtp.to("ana@example.com", 3).await, "Second beacon").is_empty(), "preferences kept her off the second");
    assert!(with_subject(&smtp.to("soc@example.com", 2).await, "incident.status_changed").is_empty());

    // Each e-mail is one message of the outbox, in the channel's log (its
    // attempt recorded once the mail server took it).
    let items = recorded(&app, &owner, &channel.str("id"), 4).await;
    assert_eq!(items.len(), 4, "{items:?}");
    assert!(items.iter().all(|a| a["success"] == true && a["response"] == "sent"));
    let delivered = app.get(&format!("/api/v1/notification-channels/{}/messages?status=delivered", channel.str("id")), &owner.token).await;
    let delivered = delivered.expect(200);
    assert!(delivered.body["items"].as_array().is_some_and(|m| m.iter().all(|m| m["payload"]["to"].is_string())));

    // Turned off, it sends nothing; an analyst may not manage channels.
    app.patch(&format!("/api/v1/notification-channels/{}", channel.str("id")), &owner.token, json!({ "enabled": false }), None)
        .await
        .expect(200);
    app.incident(&owner, "Quiet one").await;
    app.get("/api/v1/notification-channels", &ana.token).await.problem(403, "forbidden");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(with_subject(&smtp.to("soc@example.com", 2).await, "Quiet one").is_empty());
    app.shutdown().await;
}
