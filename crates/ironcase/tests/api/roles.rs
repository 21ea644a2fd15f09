//! The role matrix: what each built-in role may do, through HTTP.

use serde_json::json;

use crate::helpers::*;

const ROLES: [&str; 6] = ["owner", "admin", "lead", "senior_analyst", "analyst", "viewer"];

/// Expected status per role, in `ROLES` order.
struct Case {
    what: &'static str,
    expect: [u16; 6],
}

#[tokio::test]
async fn role_matrix() {
    let app = TestApp::spawn().await;
    let boss = app.admin().await;
    let mut users = Vec::new();
    for r in ROLES {
        // The bootstrap owner stands in for "owner"; a second owner would do the same.
        let u = if r == "owner" { boss.clone() } else { app.member(&boss, &format!("{r}@example.com"), r, None).await };
        users.push(u);
    }
    let cases = [
        Case { what: "create incident", expect: [201, 201, 201, 201, 201, 403] },
        Case { what: "read incident", expect: [200, 200, 200, 200, 200, 200] },
        Case { what: "list incidents", expect: [200, 200, 200, 200, 200, 200] },
        Case { what: "update someone else's incident", expect: [200, 200, 200, 200, 403, 403] },
        Case { what: "update an incident assigned to me", expect: [200, 200, 200, 200, 200, 403] },
        Case { what: "comment", expect: [201, 201, 201, 201, 201, 403] },
        Case { what: "timeline", expect: [200, 200, 200, 200, 200, 200] },
        Case { what: "delete incident", expect: [204, 204, 204, 403, 403, 403] },
        Case { what: "read audit", expect: [200, 200, 200, 403, 403, 403] },
        Case { what: "verify audit", expect: [200, 200, 200, 403, 403, 403] },
        Case { what: "read organization", expect: [200, 200, 200, 200, 200, 200] },
        Case { what: "list members", expect: [200, 200, 200, 200, 200, 200] },
        Case { what: "add member", expect: [201, 201, 403, 403, 403, 403] },
        Case { what: "create api key", expect: [201, 201, 201, 403, 403, 403] },
        Case { what: "list api keys", expect: [200, 200, 200, 403, 403, 403] },
        Case { what: "upload evidence", expect: [201, 201, 201, 201, 403, 403] },
        Case { what: "upload evidence to an incident assigned to me", expect: [201, 201, 201, 201, 201, 403] },
        Case { what: "read evidence", expect: [200, 200, 200, 200, 200, 200] },
        Case { what: "download evidence", expect: [200, 200, 200, 200, 200, 403] },
        Case { what: "delete evidence", expect: [200, 200, 200, 403, 403, 403] },
    ];
    for case in &cases {
        for (i, (role, u)) in ROLES.iter().zip(&users).enumerate() {
            let other = app.incident(&boss, "someone else's").await.str("id");
            let assigned = app
                .post(
                    "/api/v1/incidents",
                    &boss.token,
                    json!({ "title": "assigned", "severity": "low", "category": "other", "assignee_id": u.id }),
                )
                .await
                .expect(201)
                .str("id");
            let t = &u.token;
            let r = match case.what {
                "create incident" => {
                    app.post("/api/v1/incidents", t, json!({ "title": "mine", "severity": "low", "category": "other" })).await
                }
                "read incident" => app.get(&format!("/api/v1/incidents/{other}"), t).await,
                "list incidents" => app.get("/api/v1/incidents", t).await,
                "update someone else's incident" => {
                    app.patch(&format!("/api/v1/incidents/{other}"), t, json!({ "severity": "medium" }), Some("\"1\"")).await
                }
                "update an incident assigned to me" => {
                    app.patch(&format!("/api/v1/incidents/{assigned}"), t, json!({ "severity": "medium" }), Some("\"1\"")).await
                }
                "comment" => app.post(&format!("/api/v1/incidents/{other}/comments"), t, json!({ "body": "hi" })).await,
                "timeline" => app.get(&format!("/api/v1/incidents/{other}/timeline"), t).await,
                "delete incident" => app.delete(&format!("/api/v1/incidents/{other}"), t).await,
                "read audit" => app.get("/api/v1/audit", t).await,
                "verify audit" => app.get("/api/v1/audit/verify", t).await,
                "read organization" => app.get("/api/v1/organization", t).await,
                "list members" => app.get("/api/v1/members", t).await,
                "add member" => {
                    app.post("/api/v1/members", t, json!({ "email": format!("new-{role}@example.com"), "role": "viewer" })).await
                }
                "create api key" => app.post("/api/v1/api-keys", t, json!({ "name": "k", "role": "viewer" })).await,
                "list api keys" => app.get("/api/v1/api-keys", t).await,
                "upload evidence" => app.upload(t, &other, json!({ "name": "e", "kind": "other" }), b"e".to_vec()).await,
                "upload evidence to an incident assigned to me" => {
                    app.upload(t, &assigned, json!({ "name": "e", "kind": "other" }), b"e".to_vec()).await
                }
                "read evidence" | "download evidence" | "delete evidence" => {
                    let e =
                        app.upload(&boss.token, &other, json!({ "name": "e", "kind": "other" }), b"e".to_vec()).await.expect(201).str("id");
                    match case.what {
                        "read evidence" => app.get(&format!("/api/v1/evidence/{e}"), t).await,
                        "download evidence" => {
                            let (status, _, _) = app.download(t, &e).await;
                            Resp {
                                status,
                                headers: Default::default(),
                                body: json!({ "code": if status == 403 { "forbidden" } else { "" } }),
                            }
                        }
                        _ => {
                            app.send(
                                reqwest::Method::DELETE,
                                &format!("/api/v1/evidence/{e}"),
                                Some(t),
                                Some(json!({ "reason": "r" })),
                                &[],
                            )
                            .await
                        }
                    }
                }
                other => unreachable!("{other}"),
            };
            assert_eq!(r.status.as_u16(), case.expect[i], "{role} / {}: {}", case.what, r.body);
            if r.status == 403 {
                assert_eq!(r.code(), "forbidden");
            }
        }
    }
    // An analyst may update what they reported.
    let analyst = &users[4];
    let own = app.incident(analyst, "my own").await.str("id");
    app.patch(&format!("/api/v1/incidents/{own}"), &analyst.token, json!({ "status": "triaged" }), Some("\"1\"")).await.expect(200);
}

#[tokio::test]
async fn the_documented_role_table_is_the_code_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    let table = ironcase_domain::role_table_markdown();
    assert!(readme.contains(&table), "README's role table differs from `ironcase roles`; paste its output:\n{table}");
}

/// The README's list of error codes and the OpenAPI document's problem schema
/// both come from `ErrorCode`, as the role table comes from the role data.
#[tokio::test]
async fn the_documented_error_codes_are_the_code_list() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    let table = ironcase_app::ErrorCode::markdown_table();
    assert!(readme.contains(&table), "README's error codes differ from `ironcase error-codes`; paste its output:\n{table}");
    let app = TestApp::spawn().await;
    let doc = app.send(reqwest::Method::GET, "/api/v1/openapi.json", None, None, &[]).await.expect(200);
    let listed: Vec<&str> = doc.body["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the problem's code is an enum")
        .iter()
        .map(|v| v.as_str().expect("a code"))
        .collect();
    let codes: Vec<&str> = ironcase_app::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes);
}
