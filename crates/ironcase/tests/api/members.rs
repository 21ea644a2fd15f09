use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn members_add_list_role_change_and_removal_end_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let org = app.get("/api/v1/organization", &owner.token).await.expect(200);
    assert_eq!(org.body["slug"], "default");
    assert_eq!(org.body["plan"], "enterprise");
    assert_eq!(org.body["status"], "active");

    let ana = app.member(&owner, "ana@example.com", "analyst", None).await;
    let list = app.get("/api/v1/members", &owner.token).await.expect(200);
    let emails: Vec<&str> = list.body["items"].as_array().expect("items").iter().map(|m| m["email"].as_str().expect("email")).collect();
    assert_eq!(emails, ["admin@localhost", "ana@example.com"]);
    // Inviting a member again is a conflict.
    app.post("/api/v1/members", &owner.token, json!({ "email": "ana@example.com", "role": "viewer" })).await.problem(409, "already_member");

    // Changing the role ends ana's sessions at once.
    app.get("/api/v1/auth/me", &ana.token).await.expect(200);
    let r = app.patch(&format!("/api/v1/members/{}", ana.id), &owner.token, json!({ "role": "lead" }), None).await.expect(200);
    assert_eq!(r.body["role"], "lead");
    app.get("/api/v1/auth/me", &ana.token).await.problem(401, "unauthenticated");
    let ana = app.login("ana@example.com", PASSWORD, None).await;
    assert_eq!(app.get("/api/v1/auth/me", &ana.token).await.body["role"], "lead");

    // Removal ends them too, and she can no longer log in here.
    app.delete(&format!("/api/v1/members/{}", ana.id), &owner.token).await.expect(204);
    app.get("/api/v1/auth/me", &ana.token).await.problem(401, "unauthenticated");
    app.login_raw("ana@example.com", PASSWORD, None).await.problem(401, "invalid_credentials");
    app.delete(&format!("/api/v1/members/{}", ana.id), &owner.token).await.problem(404, "not_found");

    // Audit has each change.
    let a = app.get(&format!("/api/v1/audit?resource_id={}", ana.id), &owner.token).await.expect(200);
    let actions: Vec<&str> = a.body["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("action")).collect();
    assert_eq!(actions, ["member.remove", "member.update", "member.add"]);
}

#[tokio::test]
async fn the_last_owner_stays_and_admins_cannot_touch_owners() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.patch(&format!("/api/v1/members/{}", owner.id), &owner.token, json!({ "role": "admin" }), None).await.problem(409, "last_owner");
    app.delete(&format!("/api/v1/members/{}", owner.id), &owner.token).await.problem(409, "last_owner");
    let adm = app.member(&owner, "adm@example.com", "admin", None).await;
    app.patch(&format!("/api/v1/members/{}", owner.id), &adm.token, json!({ "role": "viewer" }), None).await.problem(403, "forbidden");
    app.delete(&format!("/api/v1/members/{}", owner.id), &adm.token).await.problem(403, "forbidden");
    app.post("/api/v1/members", &adm.token, json!({ "email": "o2@example.com", "role": "owner" })).await.problem(403, "forbidden");
    // An admin can manage lower roles.
    let v = app.member(&adm, "v@example.com", "viewer", None).await;
    app.patch(&format!("/api/v1/members/{}", v.id), &adm.token, json!({ "role": "analyst" }), None).await.expect(200);
    // With a second owner, the first may step down.
    let o2 = app.member(&owner, "o2@example.com", "owner", None).await;
    app.patch(&format!("/api/v1/members/{}", owner.id), &o2.token, json!({ "role": "admin" }), None).await.expect(200);
}

#[tokio::test]
async fn operators_create_organisations_and_others_cannot() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let (org, acme_owner) = app.org(&op, "acme").await;
    assert!(org["id"].as_str().expect("id").starts_with("org_"));
    assert_eq!(org["slug"], "acme");
    assert_eq!(org["plan"], "enterprise");
    assert_eq!(org["status"], "active");
    let list = app.get("/api/v1/admin/organizations", &op.token).await.expect(200);
    let slugs: Vec<&str> = list.body["items"].as_array().expect("items").iter().map(|o| o["slug"].as_str().expect("slug")).collect();
    assert_eq!(slugs, ["default", "acme"]);
    // Slugs are unique.
    app.post(
        "/api/v1/admin/organizations",
        &op.token,
        json!({ "name": "x", "slug": "acme", "owner": { "email": "z@z.test", "name": "z", "password": PASSWORD } }),
    )
    .await
    .problem(409, "slug_taken");
    // An owner of an organisation is not a platform operator.
    app.get("/api/v1/admin/organizations", &acme_owner.token).await.problem(403, "forbidden");
    app.post(
        "/api/v1/admin/organizations",
        &acme_owner.token,
        json!({ "name": "x", "slug": "evil", "owner": { "email": "e@e.test", "name": "e", "password": PASSWORD } }),
    )
    .await
    .problem(403, "forbidden");
    // The new organisation starts empty, with its own numbering.
    assert_eq!(app.incident(&acme_owner, "first").await.body["number"], "INC-1");
    assert_eq!(app.incident(&op, "first").await.body["number"], "INC-1");
}

/// Nobody is added to an organisation without accepting: an invitation's
/// answer is the same whether the address has an account (in any tenant) or
/// not, and an existing account joins only by proving it holds it.
#[tokio::test]
async fn invitations_add_nobody_without_consent_and_reveal_no_account() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let (_, acme) = app.org(&op, "acme").await;
    let (_, beta) = app.org(&op, "beta").await;
    // owner@acme.test exists (acme's owner, named "Owner"); ghost@example.com does not.
    let known = app.post("/api/v1/members", &beta.token, json!({ "email": "owner@acme.test", "role": "analyst" })).await.expect(201);
    let unknown = app.post("/api/v1/members", &beta.token, json!({ "email": "ghost@example.com", "role": "analyst" })).await.expect(201);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v["invitation"].as_object().expect("invitation").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&known.body), keys(&unknown.body));
    assert!(!known.body.to_string().contains("Owner"), "{}", known.body);
    assert!(known.str("token").starts_with("ici_"));
    // Not a member until accepted.
    let members = app.get("/api/v1/members", &beta.token).await.expect(200);
    assert!(!members.body.to_string().contains("owner@acme.test"));
    let pending = app.get("/api/v1/invitations", &beta.token).await.expect(200);
    assert_eq!(pending.body["items"].as_array().map(Vec::len), Some(2));
    app.get("/api/v1/invitations", &acme.token).await.expect(200).body["items"]
        .as_array()
        .map(Vec::len)
        .filter(|n| *n == 0)
        .expect("none of beta's");
    assert!(!pending.body.to_string().contains("ici_"), "tokens are never shown again");

    // A new account needs a name and a password of at least 12 characters.
    let short = app.post("/api/v1/members", &beta.token, json!({ "email": "short@example.com", "role": "viewer" })).await.expect(201);
    app.accept(&short.str("token"), "short").await.problem(422, "validation_failed");
    let body = json!({ "token": short.str("token"), "password": PASSWORD });
    let r = app.send(reqwest::Method::POST, "/api/v1/invitations/accept", None, Some(body), &[]).await;
    assert_eq!(r.problem(422, "validation_failed").body["errors"][0]["field"], "name");
    // The existing account must prove itself: a wrong password is refused and changes nothing.
    let token = known.str("token");
    app.accept(&token, "not the password at all").await.problem(401, "invalid_credentials");
    app.login_raw("owner@acme.test", PASSWORD, Some("beta")).await.problem(401, "invalid_credentials");
    let joined = app.accept(&token, PASSWORD).await.expect(201);
    assert_eq!(joined.body["organization"]["slug"], "beta");
    assert_eq!(joined.body["member"]["role"], "analyst");
    app.login("owner@acme.test", PASSWORD, Some("beta")).await;
    // A token works once.
    app.accept(&token, PASSWORD).await.problem(404, "not_found");
    // A withdrawn invitation, or another tenant's withdrawal, and an expired one.
    let third = app.post("/api/v1/members", &beta.token, json!({ "email": "third@example.com", "role": "viewer" })).await.expect(201);
    let third_id = third.body["invitation"]["id"].as_str().expect("id").to_owned();
    app.delete(&format!("/api/v1/invitations/{third_id}"), &acme.token).await.problem(404, "not_found");
    app.delete(&format!("/api/v1/invitations/{third_id}"), &beta.token).await.expect(204);
    app.accept(&third.str("token"), PASSWORD).await.problem(404, "not_found");
    app.clock.advance_secs(7 * 24 * 3600 + 1);
    app.accept(&unknown.str("token"), PASSWORD).await.problem(404, "not_found");
    // Each step is audited in the organisation.
    let beta_owner = app.login("owner@beta.test", PASSWORD, Some("beta")).await;
    let audit = app.get("/api/v1/audit?limit=200", &beta_owner.token).await.expect(200);
    let actions: Vec<&str> = audit.body["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["member.invite", "member.add", "member.invite_revoked"] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
}
