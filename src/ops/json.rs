//! Reading and editing Partner Center resources as JSON without losing fields.
//!
//! The service answers in camelCase and accepts PascalCase; a read-modify-write must send back every
//! field it read, known or not, so resources stay `serde_json::Value` and keys match case-insensitively.

use serde_json::{Map, Value};

/// The value under `key` (any case) in an object.
pub fn get<'v>(obj: &'v Value, key: &str) -> Option<&'v Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The string under `key` (any case), if it is a string.
pub fn get_str<'v>(obj: &'v Value, key: &str) -> Option<&'v str> {
    get(obj, key).and_then(Value::as_str)
}

/// Sets `key` in an object, overwriting an existing key of any case in place (keeping its spelling),
/// or adding it in camelCase. Returns whether the value changed.
pub fn set(obj: &mut Map<String, Value>, key: &str, value: Value) -> bool {
    if let Some(existing) = obj
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
    {
        if *existing == value {
            return false;
        }
        *existing = value;
        return true;
    }
    obj.insert(key.to_owned(), value);
    true
}

/// Sets a text field to a row's value, `""` clearing it; clearing a field that holds no text
/// changes nothing, so a cleared field stays cleared without a write. Returns whether it changed.
pub fn put(obj: &mut Map<String, Value>, key: &str, value: &str) -> bool {
    let holds_text = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
        .is_some_and(|v| !v.is_empty());
    if value.is_empty() && !holds_text {
        return false;
    }
    set(obj, key, Value::String(value.to_owned()))
}

/// The object under `key` (any case), created empty if missing or null.
pub fn object_mut<'v>(obj: &'v mut Map<String, Value>, key: &str) -> &'v mut Map<String, Value> {
    let name = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .unwrap_or_else(|| key.to_owned());
    let slot = obj.entry(name).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_keeps_the_spelling_it_found_and_reports_change() {
        let mut v = json!({"firstName": "A", "middleName": "M"});
        let o = v.as_object_mut().unwrap();
        assert!(set(o, "FirstName", json!("B")));
        assert!(!set(o, "firstname", json!("B")));
        assert!(set(o, "lastName", json!("C")));
        assert_eq!(
            v,
            json!({"firstName": "B", "middleName": "M", "lastName": "C"})
        );
    }

    #[test]
    fn object_mut_replaces_null_with_an_object() {
        let mut v = json!({"defaultAddress": null});
        let o = v.as_object_mut().unwrap();
        object_mut(o, "DefaultAddress").insert("city".into(), json!("Lund"));
        assert_eq!(v, json!({"defaultAddress": {"city": "Lund"}}));
    }
}
