//! A Partner Center collection read to its end: page after page, following each answer's
//! `links.next` and sending back the `MS-ContinuationToken` it names, as the reference's seek-paged
//! collections show it (Get a list of customers; Get invoice line items).
//!
//! What comes back is hostile: a `links.next` uri is taken as a path under `/v1` only (with or
//! without a leading `/v1/` or `v1/`, which has been seen in the wild), a token is bounded and must
//! be a header value, a token seen before ends the listing as a loop, and the pages and their items
//! are bounded.

use std::collections::{HashSet, VecDeque};

use futures::Stream;
use serde_json::Value;

use crate::api::{Api, CallError, Request};
use crate::ops::json::{get, get_str};

/// The longest `MS-ContinuationToken` followed.
pub const MAX_TOKEN: usize = 4096;
/// The longest `links.next` uri followed.
const MAX_URI: usize = 2048;
/// The most pages one listing is followed for (a partner of ten million customers at 100 a page).
pub const MAX_PAGES: usize = 100_000;
/// The most items one page may hold.
const MAX_ITEMS: usize = 10_000;

/// Where a listing is: the next page to ask for (`None`: it ended), what is left of the last page,
/// and the tokens seen (a token twice is a loop).
struct State<'a> {
    api: &'a dyn Api,
    /// The path every page must stay on (`/customers`).
    root: String,
    next: Option<Request>,
    items: VecDeque<Value>,
    seen: HashSet<String>,
    pages: usize,
}

/// Every item of the collection at `first` (a path under `/v1`, with its query), page after page.
/// An error ends the stream after it is yielded.
pub fn items<'a>(
    api: &'a dyn Api,
    first: String,
) -> impl Stream<Item = Result<Value, CallError>> + 'a {
    let root = first.split('?').next().unwrap_or("").to_ascii_lowercase();
    let state = State {
        api,
        root,
        next: Some(Request::get(first)),
        items: VecDeque::new(),
        seen: HashSet::new(),
        pages: 0,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        loop {
            if let Some(item) = s.items.pop_front() {
                return Some((Ok(item), Some(s)));
            }
            let req = s.next.take()?;
            match s.page(req).await {
                Ok(()) => continue,
                Err(e) => return Some((Err(e), None)),
            }
        }
    })
}

impl State<'_> {
    /// Reads one page: its items, and the request for the next one.
    async fn page(&mut self, req: Request) -> Result<(), CallError> {
        self.pages += 1;
        if self.pages > MAX_PAGES {
            return Err(bad(format!(
                "the listing {} ran past {MAX_PAGES} pages; pcbulk stopped following it",
                self.root
            )));
        }
        let mut body = self.api.call(req).await?.json()?;
        let items = match take(&mut body, "items") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(bad(format!(
                    "the listing {} has items that are not a list",
                    self.root
                )))
            }
        };
        if items.len() > MAX_ITEMS {
            return Err(bad(format!(
                "a page of {} holds {} items, more than the {MAX_ITEMS} pcbulk reads",
                self.root,
                items.len()
            )));
        }
        self.items.extend(items);
        self.next = self.next_request(&body)?;
        Ok(())
    }

    /// The request for the page after `body`, from its `links.next`; `None` at the end.
    fn next_request(&mut self, body: &Value) -> Result<Option<Request>, CallError> {
        let Some(next) = get(body, "links").and_then(|l| get(l, "next")) else {
            return Ok(None);
        };
        let uri = get_str(next, "uri").unwrap_or("");
        let path = next_path(uri, &self.root)?;
        let token = continuation_token(next)?;
        if let Some(t) = &token {
            if !self.seen.insert(t.clone()) {
                return Err(bad(format!(
                    "the listing {} gave the same continuation token twice, so its pages would go \
                     round in a loop; pcbulk stopped following it",
                    self.root
                )));
            }
        }
        let req = Request::get(path);
        Ok(Some(match token {
            Some(t) => req.continuation(t),
            None => req,
        }))
    }
}

/// Takes the value under `key` (any case) out of an object, leaving null: a page's items are moved
/// to the listing's queue, not copied.
fn take(obj: &mut Value, key: &str) -> Option<Value> {
    let (_, v) = obj
        .as_object_mut()?
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))?;
    Some(std::mem::take(v))
}

/// The path under `/v1` a `links.next` uri names: relative to the `/v1` root as the reference's
/// examples are (`/customers?…`), or with the root repeated (`/v1/customers?…`, `v1/customers?…`);
/// an absolute URL's host is ignored (calls go only to the target). It must stay on `root`.
pub fn next_path(uri: &str, root: &str) -> Result<String, CallError> {
    let uri = uri.trim();
    if uri.is_empty() || uri.len() > MAX_URI || uri.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(format!(
            "the listing {root} gave a links.next uri pcbulk cannot follow ({} characters)",
            uri.len()
        )));
    }
    let path = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => uri,
    };
    let path = path.trim_start_matches('/');
    let path = match path.get(..3) {
        Some(v1) if v1.eq_ignore_ascii_case("v1/") => &path[3..],
        _ => path,
    };
    let path = format!("/{}", path.trim_start_matches('/'));
    let on_root = path
        .split('?')
        .next()
        .is_some_and(|p| p.eq_ignore_ascii_case(root));
    if !on_root || path.contains("..") || path.contains('#') {
        return Err(bad(format!(
            "the listing {root} gave a links.next uri that leads elsewhere ({}); pcbulk stopped following it",
            crate::api::error::clean(uri, &[])
        )));
    }
    Ok(path)
}

/// The `MS-ContinuationToken` a `links.next` carries in its `headers` (as `{key, value}` pairs).
fn continuation_token(next: &Value) -> Result<Option<String>, CallError> {
    let Some(Value::Array(headers)) = get(next, "headers") else {
        return Ok(None);
    };
    let token = headers.iter().find_map(|h| {
        get_str(h, "key")
            .filter(|k| k.eq_ignore_ascii_case("MS-ContinuationToken"))
            .map(|_| get_str(h, "value").unwrap_or(""))
    });
    match token {
        None => Ok(None),
        Some(t)
            if !t.is_empty()
                && t.len() <= MAX_TOKEN
                && t.bytes().all(|b| (b' '..=b'~').contains(&b)) =>
        {
            Ok(Some(t.to_owned()))
        }
        Some(t) => Err(bad(format!(
            "a listing gave a continuation token pcbulk cannot send back ({} characters, at most \
             {MAX_TOKEN} printable ones)",
            t.len()
        ))),
    }
}

fn bad(message: String) -> CallError {
    CallError::Decode(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::fake::{ok, FakeApi};
    use futures::StreamExt;
    use serde_json::json;

    #[test]
    fn a_next_uri_is_a_path_under_v1_with_or_without_the_root_repeated() {
        let want = "/customers?size=5&seekOperation=Next";
        for uri in [
            "/customers?size=5&seekOperation=Next",
            "customers?size=5&seekOperation=Next",
            "/v1/customers?size=5&seekOperation=Next",
            "v1/customers?size=5&seekOperation=Next",
            "https://api.partnercenter.microsoft.com/v1/customers?size=5&seekOperation=Next",
        ] {
            assert_eq!(next_path(uri, "/customers").unwrap(), want, "{uri}");
        }
    }

    #[test]
    fn a_next_uri_that_leaves_the_listing_is_not_followed() {
        for uri in [
            "/customers/../profiles/billing",
            "/servicerequests",
            "/v1/customers/c1/profiles/billing",
            "",
            "/customers?x=\u{1b}",
        ] {
            assert!(next_path(uri, "/customers").is_err(), "{uri:?}");
        }
    }

    fn page(ids: &[&str], next: Option<(&str, &str)>) -> serde_json::Value {
        let items: Vec<_> = ids.iter().map(|i| json!({"id": i})).collect();
        let mut body = json!({"totalCount": items.len(), "items": items, "links": {}});
        if let Some((uri, token)) = next {
            body["links"]["next"] = json!({"uri": uri, "method": "GET", "headers": [{"key": "MS-ContinuationToken", "value": token}]});
        }
        body
    }

    #[tokio::test]
    async fn every_page_is_read_with_the_token_its_predecessor_named() {
        let api = FakeApi::new(vec![
            ok(page(
                &["a", "b"],
                Some(("/v1/customers?size=2&seekOperation=Next", "t1")),
            )),
            ok(page(
                &["c", "d"],
                Some(("v1/customers?size=2&seekOperation=Next", "t2")),
            )),
            ok(page(&["e"], None)),
        ]);
        let got: Vec<_> = items(&api, "/customers?size=2".into())
            .map(|r| r.unwrap()["id"].as_str().unwrap().to_owned())
            .collect()
            .await;
        assert_eq!(got, ["a", "b", "c", "d", "e"]);
        let sent = api.sent.lock().unwrap();
        let tokens: Vec<_> = sent.iter().map(|r| r.continuation.clone()).collect();
        assert_eq!(tokens, [None, Some("t1".into()), Some("t2".into())]);
        assert!(sent[1..]
            .iter()
            .all(|r| r.path == "/customers?size=2&seekOperation=Next"));
    }

    #[tokio::test]
    async fn a_token_given_twice_ends_the_listing_as_a_loop() {
        let next = Some(("/customers?seekOperation=Next", "same"));
        let api = FakeApi::new(vec![ok(page(&["a"], next)), ok(page(&["b"], next))]);
        let got: Vec<_> = items(&api, "/customers".into()).collect().await;
        assert_eq!(got.len(), 2, "the first page's item, then the error");
        assert!(
            matches!(&got[1], Err(CallError::Decode(m)) if m.contains("same continuation token twice"))
        );
    }
}
