//! `/v1/customers`: the partner's customers, a page at a time, and `/v1/customers/{customer}`.
//!
//! A page holds at most `--page-size` customers (a smaller `size` in the query is honoured). When
//! more follow, the answer's `links.next` carries the next page's uri and, as its one header, the
//! `MS-ContinuationToken` to send with it. The token is opaque to the client: it names where the
//! next page starts and is signed with a key of this sandbox's own, so a token altered, made up or
//! kept from another sandbox is refused (400, code 800002), never served as some other page.

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde_json::{json, Value};

use super::common::{customer_not_found, error, header, Answer};
use super::Shared;
use crate::sandbox::tenant::{Customer, Tenant};

/// The longest continuation token looked at; anything longer is refused unread.
const MAX_TOKEN_LEN: usize = 256;

/// GET `/v1/customers?size=N`: one page, and `links.next` when more follow.
pub(super) fn list_customers(
    s: &Shared,
    t: &Tenant,
    query: &str,
    h: &HeaderMap,
) -> Result<Answer, Answer> {
    let asked = Query::parse(query)?;
    let size = asked.size.unwrap_or(s.opts.page_size).min(s.opts.page_size);
    let start = match header(h, "MS-ContinuationToken") {
        Some(token) => open_token(s, t, token)?,
        None if asked.seek_next => {
            return Err(error(
                400,
                800002,
                "seekOperation=Next needs the MS-ContinuationToken header of the previous page's links.next",
            ))
        }
        None => 0,
    };
    let items: Vec<Value> = t
        .customers
        .iter()
        .skip(start)
        .take(size)
        .map(|(id, c)| customer_view(id, c))
        .collect();
    let end = start + items.len();
    let mut links = json!({"self": link(&format!("/v1/customers?size={size}"), None)});
    let mut body = json!({"totalCount": items.len(), "items": items});
    if end < t.customers.len() {
        let token = seal_token(s, t, end);
        let page = start / size.max(1) + 1;
        links["next"] = link(&next_uri(s, size, page), Some(&token));
        body["continuationToken"] = json!(token);
    }
    body["links"] = links;
    body["attributes"] = json!({"objectType": "Collection"});
    Ok((StatusCode::OK, body))
}

/// GET `/v1/customers/{customer}`: the customer, with whether it granted delegated access (which
/// the reference shows only on a read by id).
pub(super) fn get_customer(t: &Tenant, c: &str) -> Result<Answer, Answer> {
    let customer = t.customers.get(c).ok_or_else(|| customer_not_found(c))?;
    let mut v = customer_view(c, customer);
    v["allowDelegatedAccess"] = json!(customer.delegated);
    Ok((StatusCode::OK, v))
}

/// A Customer resource as the list returns it.
fn customer_view(id: &str, c: &Customer) -> Value {
    json!({
        "id": id,
        "companyProfile": {
            "tenantId": id, "domain": c.domain, "companyName": c.company_name,
            "attributes": {"objectType": "CustomerCompanyProfile"}
        },
        "relationshipToPartner": "reseller",
        "links": {"self": link(&format!("/customers/{id}"), None)},
        "attributes": {"objectType": "Customer"}
    })
}

/// The next page's uri: relative to the `/v1` root, as the reference's `links.next` examples are;
/// with `--next-with-v1`, `/v1/customers?…` after odd pages and `v1/customers?…` after even ones.
fn next_uri(s: &Shared, size: usize, page: usize) -> String {
    let path = format!("customers?size={size}&seekOperation=Next");
    match (s.opts.next_with_v1, page % 2) {
        (false, _) => format!("/{path}"),
        (true, 1) => format!("/v1/{path}"),
        (true, _) => format!("v1/{path}"),
    }
}

fn link(uri: &str, token: Option<&str>) -> Value {
    let headers = match token {
        Some(t) => json!([{"key": "MS-ContinuationToken", "value": t}]),
        None => json!([]),
    };
    json!({"uri": uri, "method": "GET", "headers": headers})
}

/// What the listing's query asks.
struct Query {
    size: Option<usize>,
    seek_next: bool,
}

impl Query {
    fn parse(query: &str) -> Result<Query, Answer> {
        let mut q = Query {
            size: None,
            seek_next: false,
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k.eq_ignore_ascii_case("size") {
                match v.trim().parse::<usize>() {
                    Ok(n) if n >= 1 => q.size = Some(n),
                    _ => {
                        return Err(error(
                            400,
                            800002,
                            &format!("size must be a whole number of at least 1, not {v:?}"),
                        ))
                    }
                }
            } else if k.eq_ignore_ascii_case("seekOperation") {
                q.seek_next = v.eq_ignore_ascii_case("next");
            }
        }
        Ok(q)
    }
}

/// The token for a page starting at `offset`: the offset and its signature, base64url.
fn seal_token(s: &Shared, t: &Tenant, offset: usize) -> String {
    let text = format!("{offset}.{:016x}", signature(s, t, offset));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Where the page a token names starts, or the refusal of a token this sandbox did not issue.
fn open_token(s: &Shared, t: &Tenant, token: &str) -> Result<usize, Answer> {
    let refused = || {
        error(
            400,
            800002,
            "The continuation token is not valid: send the MS-ContinuationToken of the previous page's links.next unchanged",
        )
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(refused());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| refused())?;
    let text = String::from_utf8(bytes).map_err(|_| refused())?;
    let (offset, sig) = text.split_once('.').ok_or_else(refused)?;
    let offset: usize = offset.parse().map_err(|_| refused())?;
    let valid = u64::from_str_radix(sig, 16).is_ok_and(|g| g == signature(s, t, offset));
    if !valid || offset >= t.customers.len() {
        return Err(refused());
    }
    Ok(offset)
}

/// A keyed hash of the offset: the key is this sandbox's seed and start time.
fn signature(s: &Shared, t: &Tenant, offset: usize) -> u64 {
    let keyed = format!("{}:{}:{offset}", s.opts.seed, t.started);
    xxhash_rust::xxh3::xxh3_64_with_seed(keyed.as_bytes(), 0x5eed_c0de)
}
