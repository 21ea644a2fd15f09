//! API keys: the organisation's keys, a new one (its secret shown once,
//! with a copy button), revoking or rotating one (the new secret shown
//! once), and the addresses and public key each may use. Making a key is a sensitive action:
//! without a recent proof of identity the page asks for the password first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::apikeys::{KeyChange, NewApiKey};
use ironcase_app::page::PageSize;
use ironcase_app::store::apikey::ApiKeyRow;
use ironcase_app::AppError;
use ironcase_domain::{ApiKeyId, Role, Tlp};
use maud::{html, Markup};

use super::layout::{next_link, page, reasons, respond, select, sentences, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;
use ironcase_app::page::parse_keyset;

/// Keys a page.
const PER_PAGE: u32 = 50;

async fn keys_page(
    s: &AppState,
    b: &Browser,
    cursor: Option<(i64, ApiKeyId)>,
    created: Option<(String, String)>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let keys = s.app.apikey_list(&b.p, &b.meta, cursor, PageSize::default_of(PER_PAGE)).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let tlps: Vec<&str> = Tlp::ALL.iter().map(|t| t.as_str()).collect();
    let body = html! {
        h1 { "API keys" }
        @if let Some((name, key)) = &created {
            section.created role="status" {
                h2 { "Key “" (name) "” made" }
                p { "Copy it now: it is shown this once and kept only as a hash." }
                code id="new-key" { (key) }
                " " button type="button" data-copy="new-key" { "Copy" }
            }
        }
        @for e in &errors { p.error role="alert" { (e) } }
        @if keys.items.is_empty() { p.empty { "No keys yet." } } @else {
            table.keys {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Role" } th scope="col" { "TLP ceiling" } th scope="col" { "Last used" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for k in &keys.items {
                        tr {
                            td { (k.name) }
                            td { code { (k.key_prefix) "…" } }
                            td { (k.role.as_str()) @if k.custom_role.is_some() { " (custom)" } }
                            td { (k.tlp_max.map_or("none", Tlp::as_str)) }
                            td { (k.last_used_at.map_or("never".to_owned(), |t| t.to_rfc3339())) }
                            td {
                                @if k.revoked_at.is_some() { "revoked" } @else {
                                    form.inline method="post" action={ "/keys/" (k.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(b.csrf);
                                        button type="submit" aria-label={ "Revoke " (k.name) } { "Revoke" }
                                    }
                                    form.inline method="post" action={ "/keys/" (k.id) "/rotate" } {
                                        input type="hidden" name="csrf" value=(b.csrf);
                                        button type="submit" aria-label={ "Rotate " (k.name) } { "Rotate" }
                                    }
                                    (key_settings(b, k))
                                }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/keys", keys.next_cursor.as_deref()))
        (new_key_form(b, &roles, &tlps))
    };
    Ok(respond(status, page("API keys", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// A key's name, the addresses it may call from and the public key its
/// sensitive requests are signed with.
fn key_settings(b: &Browser, k: &ApiKeyRow) -> Markup {
    let (cidrs, public) = (format!("cidrs-{}", k.id), format!("public-{}", k.id));
    html! {
        details.key-settings {
            summary { "Settings of " (k.name) }
            form method="post" action={ "/keys/" (k.id) "/edit" } {
                input type="hidden" name="csrf" value=(b.csrf);
                label for=(cidrs) { "Allowed addresses (one range per line; empty: anywhere)" }
                textarea id=(cidrs) name="cidrs" rows="3" { (k.allowed_cidrs.ranges().join("\n")) }
                label for=(public) { "Ed25519 public key, base64 (empty: requests need no signature)" }
                textarea id=(public) name="public_key" rows="2" { (k.public_key.as_deref().unwrap_or("")) }
                button type="submit" { "Save" }
            }
        }
    }
}

fn new_key_form(b: &Browser, roles: &[&str], tlps: &[&str]) -> Markup {
    html! {
        form.key-new method="post" action="/keys" {
            h2 { "New key" }
            input type="hidden" name="csrf" value=(b.csrf);
            label for="name" { "Name" }
            input id="name" name="name" type="text" required maxlength="200";
            (select("role", "Role", roles, Some("analyst"), None))
            (select("tlp_max", "TLP ceiling", tlps, None, Some("none")))
            label for="cidrs" { "Allowed addresses (one range per line; empty: anywhere)" }
            textarea id="cidrs" name="cidrs" rows="3" {}
            button type="submit" { "Make key" }
        }
    }
}

/// `GET /keys?cursor=`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let (cursor, _) = q.page(parse_keyset::<ApiKeyId>, PER_PAGE);
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    keys_page(&s, &b, cursor, None, Vec::new(), StatusCode::OK).await
}

/// `POST /keys`: the new key, shown once.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let tlp_max = match form.opt("tlp_max") {
        None => None,
        Some(t) => Some(Tlp::parse(t).ok_or_else(|| Failure::BadRequest("choose a TLP ceiling from the list".into()))?),
    };
    let input = NewApiKey {
        name: form.get("name").to_owned(),
        role: form.get("role").to_owned(),
        expires_at: None,
        tlp_max,
        rate_per_minute: None,
        allowed_cidrs: lines(form.get("cidrs")),
        public_key: None,
    };
    match s.app.apikey_create(&b.p, &b.meta, input).await {
        Ok(k) => keys_page(&s, &b, None, Some((k.row.name.clone(), k.key)), Vec::new(), StatusCode::CREATED).await,
        Err(e @ AppError::Validation(_)) => {
            let (status, errors) = sentences(e);
            keys_page(&s, &b, None, None, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/keys")),
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect()
}

fn key_id(raw: &str) -> Result<ApiKeyId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `POST /keys/{id}/rotate`: the same key with a new secret, shown once;
/// the old secret stops working at once.
pub(crate) async fn rotate(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let k = s.app.apikey_rotate(&b.p, &b.meta, key_id(&raw)?).await.map_err(|e| b.failure(e, "/keys"))?;
    keys_page(&s, &b, None, Some((k.row.name.clone(), k.key)), Vec::new(), StatusCode::OK).await
}

/// `POST /keys/{id}/edit`: its allowed addresses and public key.
pub(crate) async fn edit(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = key_id(&raw)?;
    let public_key = Some(form.opt("public_key").map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()));
    let change = KeyChange { name: None, allowed_cidrs: Some(lines(form.get("cidrs"))), public_key };
    match s.app.apikey_update(&b.p, &b.meta, id, change).await {
        Ok(_) => Ok(Redirect::to("/keys").into_response()),
        Err(e @ AppError::Validation(_)) => {
            let (status, errors) = sentences(e);
            keys_page(&s, &b, None, None, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/keys")),
    }
}

/// `POST /keys/{id}/revoke`.
pub(crate) async fn revoke(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = key_id(&raw)?;
    s.app.apikey_revoke(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, "/keys"))?;
    Ok(Redirect::to("/keys").into_response())
}
