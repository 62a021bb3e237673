//! The fake Hub's LFS routes: the batch API, presigned-style uploads (whole
//! objects and parts), multipart completion and verify.
//!
//! Upload URLs stand in for presigned storage URLs: they refuse any request
//! that carries an `Authorization` header (and count it), check that the
//! bytes hash to the object id, and store the object only when it is whole.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::repo::sha256_hex;
use super::state::{Entered, enter, refuse};
use super::{HubRoute, Shared, lock};

fn is_oid(oid: &str) -> bool {
    oid.len() == 64 && oid.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `POST /datasets/{ns}/{name}.git/info/lfs/objects/batch`.
pub(crate) async fn batch(
    State(shared): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verify_at = match enter(&shared, HubRoute::Batch).await {
        Entered::Answer(r) => return r,
        Entered::Special(super::HubFault::VerifyAt(base)) => Some(base),
        Entered::Special(_) | Entered::Go => None,
    };
    let Some(name) = name.strip_suffix(".git") else {
        return refuse(StatusCode::NOT_FOUND, None, "not a git endpoint");
    };
    let repo = format!("{ns}/{name}");
    let mut hub = lock(&shared);
    if let Err(r) = hub.auth_write(&headers, &repo) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, None, "the batch body is not JSON");
    };
    let rev = body["ref"]["name"].as_str().unwrap_or("main").to_owned();
    if let Err(r) = hub.branch(&repo, &rev) {
        return r;
    }
    if body["operation"].as_str() != Some("upload") {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            "this fake only answers upload batches",
        );
    }
    let offered: Vec<&str> = body["transfers"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["basic"]);
    let multipart_ok = offered.contains(&"multipart");
    if !offered.contains(&"basic") && !multipart_ok {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            "no supported transfer (basic, multipart) offered",
        );
    }
    let Some(objects) = body["objects"].as_array() else {
        return refuse(StatusCode::BAD_REQUEST, None, "objects must be a list");
    };
    let base = hub.base.clone();
    let (threshold, chunk) = (hub.config.multipart_threshold, hub.config.chunk_size.max(1));
    let verify = hub.config.verify;
    let mut any_multipart = false;
    let mut out = Vec::with_capacity(objects.len());
    for object in objects {
        let oid = object["oid"].as_str().unwrap_or_default().to_owned();
        let size = object["size"].as_u64();
        let Some(size) = size.filter(|_| is_oid(&oid)) else {
            out.push(json!({
                "oid": oid,
                "size": size.unwrap_or(0),
                "error": {"code": 422, "message": "oid must be 64 hex digits and size a number"},
            }));
            continue;
        };
        if hub.stored.get(&oid) == Some(&size) {
            out.push(json!({"oid": oid, "size": size}));
            continue;
        }
        hub.expected.insert(oid.clone(), size);
        let mut actions = serde_json::Map::new();
        if multipart_ok && size >= threshold {
            any_multipart = true;
            let mut header = serde_json::Map::new();
            header.insert("chunk_size".into(), Value::from(chunk.to_string()));
            for n in 1..=size.div_ceil(chunk) {
                header.insert(
                    format!("{n:05}"),
                    Value::from(format!(
                        "{base}/lfs-upload/{oid}/part/{n}?{}",
                        signature(&oid)
                    )),
                );
            }
            actions.insert(
                "upload".into(),
                json!({"href": format!("{base}/lfs-upload/{oid}/complete?{}", signature(&oid)), "header": header}),
            );
        } else {
            actions.insert(
                "upload".into(),
                json!({"href": format!("{base}/lfs-upload/{oid}?{}", signature(&oid))}),
            );
        }
        if verify {
            let at = verify_at.as_deref().unwrap_or(&base);
            actions.insert(
                "verify".into(),
                json!({"href": format!("{at}/lfs-verify/{oid}")}),
            );
        }
        out.push(json!({"oid": oid, "size": size, "authenticated": true, "actions": actions}));
    }
    let transfer = if any_multipart { "multipart" } else { "basic" };
    let mut r =
        Json(json!({"transfer": transfer, "hash_algo": "sha256", "objects": out})).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.git-lfs+json"),
    );
    r
}

/// The query of a presigned-style URL: it stands in for a storage
/// signature, a credential no client may print.
pub(crate) fn signature(oid: &str) -> String {
    format!(
        "X-Amz-Expires=900&X-Amz-Signature=fakesig{}",
        &sha256_hex(oid.as_bytes())[..16]
    )
}

/// Counts the request and applies its fault; then refuses a
/// presigned-style request that carries the token, or (for uploads) has no
/// `Content-Length`: storage behind presigned URLs refuses
/// chunked bodies.
async fn presigned(
    shared: &Shared,
    route: HubRoute,
    headers: &HeaderMap,
    upload: bool,
) -> Result<(), Response> {
    if let Entered::Answer(r) = enter(shared, route).await {
        return Err(r);
    }
    if headers.contains_key(header::AUTHORIZATION) {
        lock(shared).leaked_auth += 1;
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            None,
            "presigned URLs take no Authorization header",
        ));
    }
    if upload && !headers.contains_key(header::CONTENT_LENGTH) {
        return Err(refuse(
            StatusCode::LENGTH_REQUIRED,
            None,
            "uploads need a Content-Length; chunked bodies are not supported",
        ));
    }
    Ok(())
}

fn etag(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", &sha256_hex(bytes)[..32]))
        .unwrap_or_else(|_| HeaderValue::from_static("\"x\""))
}

/// `PUT /lfs-upload/{oid}`: a whole object.
pub(crate) async fn put_object(
    State(shared): State<Shared>,
    Path(oid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = presigned(&shared, HubRoute::Put, &headers, true).await {
        return r;
    }
    let mut hub = lock(&shared);
    let Some(&size) = hub.expected.get(&oid) else {
        return refuse(
            StatusCode::NOT_FOUND,
            None,
            "no upload was asked for this object",
        );
    };
    if body.len() as u64 != size || sha256_hex(&body) != oid {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            &format!("the bytes do not match object {oid} of {size} bytes"),
        );
    }
    let tag = etag(&body);
    if let Err(e) = hub.store_object(&oid, body.to_vec()) {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string());
    }
    hub.expected.remove(&oid);
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(header::ETAG, tag);
    r
}

/// `PUT /lfs-upload/{oid}/part/{n}`: one part of a multipart upload.
pub(crate) async fn put_part(
    State(shared): State<Shared>,
    Path((oid, n)): Path<(String, u32)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = presigned(&shared, HubRoute::Put, &headers, true).await {
        return r;
    }
    let mut hub = lock(&shared);
    if !hub.expected.contains_key(&oid) || n == 0 {
        return refuse(StatusCode::NOT_FOUND, None, "no such upload part");
    }
    let tag = etag(&body);
    hub.parts.insert((oid, n), body.to_vec());
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(header::ETAG, tag);
    r
}

/// `POST /lfs-upload/{oid}/complete`: joins the parts, in part-number
/// order, after checking each part's ETag.
pub(crate) async fn complete(
    State(shared): State<Shared>,
    Path(oid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = presigned(&shared, HubRoute::Complete, &headers, false).await {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            "the completion body is not JSON",
        );
    };
    if body["oid"].as_str() != Some(oid.as_str()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            "the completion names another object",
        );
    }
    let mut hub = lock(&shared);
    let Some(&size) = hub.expected.get(&oid) else {
        return refuse(
            StatusCode::NOT_FOUND,
            None,
            "no upload was asked for this object",
        );
    };
    let listed: BTreeMap<u64, String> = body["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| Some((p["partNumber"].as_u64()?, p["etag"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let expected_parts = size.div_ceil(hub.config.chunk_size.max(1));
    if listed.len() as u64 != expected_parts || listed.keys().copied().ne(1..=expected_parts) {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            &format!(
                "expected parts 1..={expected_parts}, got {:?}",
                listed.keys()
            ),
        );
    }
    let mut whole = Vec::new();
    for (n, tag) in &listed {
        let key = (oid.clone(), u32::try_from(*n).unwrap_or(u32::MAX));
        let Some(part) = hub.parts.get(&key) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                None,
                &format!("part {n} was never uploaded"),
            );
        };
        if etag(part).to_str().ok() != Some(tag.as_str()) {
            return refuse(
                StatusCode::BAD_REQUEST,
                None,
                &format!("part {n}: wrong ETag"),
            );
        }
        whole.extend_from_slice(part);
    }
    if whole.len() as u64 != size || sha256_hex(&whole) != oid {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            &format!("the parts do not make object {oid} of {size} bytes"),
        );
    }
    if let Err(e) = hub.store_object(&oid, whole) {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string());
    }
    hub.expected.remove(&oid);
    hub.parts.retain(|(o, _), _| *o != oid);
    Json(json!({})).into_response()
}

/// `POST /lfs-verify/{oid}`: 200 when the object is stored with that size.
pub(crate) async fn verify(
    State(shared): State<Shared>,
    Path(oid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Entered::Answer(r) = enter(&shared, HubRoute::Verify).await {
        return r;
    }
    let hub = lock(&shared);
    if let Err(r) = hub.auth(&headers) {
        return r;
    }
    let size = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["size"].as_u64());
    if size.is_some() && hub.stored.get(&oid) == size.as_ref() {
        Json(json!({})).into_response()
    } else {
        refuse(
            StatusCode::NOT_FOUND,
            None,
            &format!("object {oid} is not stored with that size"),
        )
    }
}
