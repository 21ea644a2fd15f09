//! The HTTP side of request signing (RFC 9421) for API keys: the
//! `Content-Digest` of the body (RFC 9530) checked against the body, and the
//! signature base built from `Signature-Input`, for the application to
//! verify (`ironcase_app::signature`).
//!
//! The profile accepted: one signature (one member in `Signature-Input` and
//! in `Signature`), covering exactly `"@method"`, `"@target-uri"` and
//! `"content-digest"` in any order, with `created` and `keyid` (the API key's
//! id), `alg` absent or `"ed25519"`. `@target-uri` is the server's public URL
//! with the request's path and query. A signed request's body is read whole
//! (at most the body limit).

use axum::body::Body;
use axum::extract::Request;
use ironcase_app::signature::Signed;
use ironcase_app::{ErrorCode, Principal};
use sfv::{BareItem, Dictionary, ListEntry, Parser};
use sha2::{Digest, Sha256, Sha512};

use crate::error::ApiError;
use crate::AppState;

const COMPONENTS: [&str; 3] = ["@method", "@target-uri", "content-digest"];

fn invalid(why: &str) -> ApiError {
    ApiError::new(ErrorCode::SignatureInvalid, format!("the request signature is not accepted: {why}"))
}

/// Whether the request carries a signature.
pub fn is_signed(req: &Request) -> bool {
    req.headers().contains_key("signature-input") || req.headers().contains_key("signature")
}

/// Checks a signed request for `p` (see the module): the request, its body
/// put back, and `p` marked as signed.
pub async fn accept(state: &AppState, req: Request, p: Principal) -> Result<(Request, Principal), ApiError> {
    let (parts, body) = req.into_parts();
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, format!("a signed request's body is at most {limit} bytes")))?;
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let digest = header("content-digest").ok_or_else(|| invalid("a signed request needs Content-Digest"))?;
    check_digest(&digest, &bytes)?;
    let public = state.app.settings().public_url.trim_end_matches('/').to_owned();
    // The URI as the client sent it (a nested router sees its own part only).
    let uri = parts.extensions.get::<axum::extract::OriginalUri>().map_or(&parts.uri, |o| &o.0);
    let target = format!("{public}{}", uri.path_and_query().map_or("/", |pq| pq.as_str()));
    let signed = signature_base(
        parts.method.as_str(),
        &target,
        &digest,
        &header("signature-input").unwrap_or_default(),
        &header("signature").unwrap_or_default(),
    )?;
    let p = state.app.accept_signature(p, signed).await?;
    Ok((Request::from_parts(parts, Body::from(bytes)), p))
}

/// The body's digest is one `Content-Digest` names (sha-256 or sha-512).
fn check_digest(header: &str, body: &[u8]) -> Result<(), ApiError> {
    let dict: Dictionary =
        Parser::new(header).parse().map_err(|_| ApiError::new(ErrorCode::DigestMismatch, "Content-Digest does not parse"))?;
    let mut checked = false;
    for (alg, entry) in &dict {
        let ListEntry::Item(item) = entry else { continue };
        let Some(sent) = item.bare_item.as_byte_sequence() else { continue };
        let actual: Vec<u8> = match alg.as_str() {
            "sha-256" => Sha256::digest(body).to_vec(),
            "sha-512" => Sha512::digest(body).to_vec(),
            _ => continue,
        };
        if actual != sent {
            return Err(ApiError::new(ErrorCode::DigestMismatch, format!("the body's {} is not the one in Content-Digest", alg.as_str())));
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::DigestMismatch, "Content-Digest names no supported algorithm (sha-256, sha-512)"))
    }
}

/// The signature base (RFC 9421 section 2.5) of the one signature.
fn signature_base(method: &str, target: &str, digest: &str, input: &str, signature: &str) -> Result<Signed, ApiError> {
    let inputs: Dictionary = Parser::new(input).parse().map_err(|_| invalid("Signature-Input does not parse"))?;
    let sigs: Dictionary = Parser::new(signature).parse().map_err(|_| invalid("Signature does not parse"))?;
    let (Some((label, ListEntry::InnerList(list))), 1, 1) = (inputs.first(), inputs.len(), sigs.len()) else {
        return Err(invalid("exactly one signature, with its inner list of components, is accepted"));
    };
    let Some(ListEntry::Item(sig)) = sigs.get(label) else { return Err(invalid("Signature has no member of Signature-Input's label")) };
    let sig = sig.bare_item.as_byte_sequence().ok_or_else(|| invalid("the signature is not a byte sequence"))?.to_vec();
    let names: Vec<&str> = list.items.iter().filter_map(|i| i.bare_item.as_string().map(|s| s.as_str())).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    let mut wanted = COMPONENTS.to_vec();
    wanted.sort_unstable();
    if names.len() != list.items.len() || sorted != wanted || list.items.iter().any(|i| !i.params.is_empty()) {
        return Err(invalid("the covered components must be exactly \"@method\", \"@target-uri\" and \"content-digest\""));
    }
    let param = |name: &str| list.params.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v);
    let int = |v: &BareItem| v.as_integer().map(i64::from);
    let created = param("created").and_then(int).ok_or_else(|| invalid("`created` is required"))?;
    let expires = match param("expires") {
        Some(v) => Some(int(v).ok_or_else(|| invalid("`expires` is not an integer"))?),
        None => None,
    };
    let keyid = param("keyid").and_then(|v| v.as_string()).map(|s| s.as_str().to_owned()).ok_or_else(|| invalid("`keyid` is required"))?;
    if param("alg").is_some_and(|v| v.as_string().is_none_or(|a| a.as_str() != "ed25519")) {
        return Err(invalid("`alg` must be \"ed25519\""));
    }
    // The signature parameters exactly as sent: everything after the label.
    let raw = input.trim().split_once('=').map(|(_, v)| v.trim()).ok_or_else(|| invalid("Signature-Input has no value"))?;
    let mut base = String::new();
    for name in &names {
        let value = match *name {
            "@method" => method.to_owned(),
            "@target-uri" => target.to_owned(),
            _ => digest.trim().to_owned(),
        };
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {raw}"));
    Ok(Signed { base, signature: sig, created, expires, keyid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// `Content-Digest: sha-256=:…:` of `body`, as a client sends it.
    fn content_digest(body: &[u8]) -> String {
        format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body)))
    }

    #[test]
    fn the_signature_base_follows_rfc_9421() {
        let digest = content_digest(b"{\"hello\": \"world\"}");
        let input = r#"sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="key_1";alg="ed25519""#;
        let s = signature_base("POST", "https://ironcase.example/api/v1/api-keys", &digest, input, "sig1=:AAAA:").expect("parses");
        assert_eq!(
            s.base,
            format!(
                "\"@method\": POST\n\"@target-uri\": https://ironcase.example/api/v1/api-keys\n\"content-digest\": {digest}\n\
                 \"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");created=1618884473;keyid=\"key_1\";alg=\"ed25519\""
            )
        );
        assert_eq!((s.created, s.keyid.as_str(), s.signature.as_slice()), (1618884473, "key_1", &[0u8, 0, 0][..]));
        for bad in [
            r#"sig1=("@method" "@target-uri");created=1;keyid="k""#,
            r#"sig1=("@method" "@target-uri" "content-digest");keyid="k""#,
            r#"sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k";alg="hmac-sha256""#,
            r#"sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k", sig2=("@method");created=1"#,
            "garbage(",
        ] {
            assert!(signature_base("POST", "https://x/", &digest, bad, "sig1=:AAAA:").is_err(), "{bad}");
        }
        assert!(check_digest(&digest, b"{\"hello\": \"world\"}").is_ok());
        assert!(check_digest(&digest, b"{\"hello\": \"there\"}").is_err());
        assert!(check_digest("md5=:AAAA:", b"").is_err());
    }
}
