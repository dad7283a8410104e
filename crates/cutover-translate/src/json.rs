//! Reading a client's JSON body member by member, each member known by its path, so that
//! a refusal names exactly what it refuses: the lookups, the known-member checks and the
//! rules that say which values of a member the other API can carry.

use serde_json::{Map, Value};

use crate::Untranslatable;

pub(crate) type Object = Map<String, Value>;

pub(crate) fn refuse(field: impl Into<String>, reason: impl Into<String>) -> Untranslatable {
    Untranslatable { field: field.into(), reason: reason.into() }
}

/// The client's body, which must be a JSON object.
pub(crate) fn body_object(body: &[u8]) -> Result<Object, Untranslatable> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(refuse("", "the body is not a JSON object")),
    }
}

/// The path of member `name` inside the value at `path`.
pub(crate) fn member(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

/// The path of item `index` of the array at `path`.
pub(crate) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Known member `name`, unless it is absent or `null`: clients send `null` for "not given".
pub(crate) fn present<'a>(object: &'a Object, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| !value.is_null())
}

/// Every member of `object` must be one of `known`: what is not known is not carried,
/// and what is not carried is refused — even when `null`, since cutover cannot tell what
/// `null` means for a member it does not know.
pub(crate) fn only_known(object: &Object, path: &str, known: &[&str]) -> Result<(), Untranslatable> {
    match object.keys().find(|name| !known.contains(&name.as_str())) {
        Some(name) => Err(refuse(member(path, name), "cutover does not know this member, so it cannot carry it")),
        None => Ok(()),
    }
}

pub(crate) fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Object, Untranslatable> {
    value.as_object().ok_or_else(|| refuse(path, "expected a JSON object"))
}

pub(crate) fn array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], Untranslatable> {
    value.as_array().map(Vec::as_slice).ok_or_else(|| refuse(path, "expected an array"))
}

pub(crate) fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, Untranslatable> {
    value.as_str().ok_or_else(|| refuse(path, "expected a string"))
}

/// Member `name` of `object`, a boolean if present.
pub(crate) fn flag(object: &Object, path: &str, name: &str) -> Result<Option<bool>, Untranslatable> {
    match present(object, name) {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(refuse(member(path, name), "expected a boolean")),
    }
}

/// Member `name` of `object`, which must be there.
pub(crate) fn required<'a>(object: &'a Object, path: &str, name: &str) -> Result<&'a Value, Untranslatable> {
    present(object, name).ok_or_else(|| refuse(member(path, name), "this member is required"))
}

/// Member `type` of a content block or tool, which must be a string.
pub(crate) fn kind<'a>(object: &'a Object, path: &str) -> Result<&'a str, Untranslatable> {
    string(required(object, path, "type")?, &member(path, "type"))
}

/// A conversation whose last message is the assistant's is refused: Anthropic's API
/// continues that message (a prefill), chat completions answer it with a new one, so the
/// same request would mean another thing upstream.
pub(crate) fn no_prefill(messages: &[Value]) -> Result<(), Untranslatable> {
    match messages.last() {
        Some(last) if last.get("role").and_then(Value::as_str) == Some("assistant") => Err(refuse(
            member(&item("messages", messages.len() - 1), "role"),
            "Anthropic's API continues a last assistant message, chat completions answer it with a new one",
        )),
        _ => Ok(()),
    }
}

/// Which values of a top-level member the upstream's API can carry; any other is refused
/// with `reason`.
pub(crate) struct Rule {
    pub member: &'static str,
    pub carried: fn(&Value) -> bool,
    pub reason: &'static str,
}

/// The member of `object` first refused by `rules` (members absent or `null` pass).
pub(crate) fn check_rules(object: &Object, rules: &[Rule]) -> Result<(), Untranslatable> {
    for rule in rules {
        if let Some(value) = present(object, rule.member)
            && !(rule.carried)(value)
        {
            return Err(refuse(rule.member, rule.reason));
        }
    }
    Ok(())
}

/// `service_tier`, which both directions carry only at the default both APIs share.
pub(crate) const SERVICE_TIER: Rule = Rule {
    member: "service_tier",
    carried: |tier| tier == "auto",
    reason: "only `auto`, which both APIs default to, carries over",
};

/// A value a rule never carries.
pub(crate) fn never(_: &Value) -> bool {
    false
}

/// Text as one string when it is one piece, else as an array of text parts (OpenAI) or
/// text blocks (Anthropic) — the same `{"type":"text","text":…}` shape in both APIs — so
/// no separator is invented between pieces.
pub(crate) fn text_content(mut pieces: Vec<String>) -> Value {
    if pieces.len() == 1 {
        return Value::String(pieces.remove(0));
    }
    Value::Array(pieces.into_iter().map(|text| serde_json::json!({"type": "text", "text": text})).collect())
}

/// Member `name` of an upstream's `value` as a string, `""` when it is not one: for the
/// members an answer is expected to have but that a relay may leave out.
pub(crate) fn str_or_empty<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The body as bytes: a `Value` always serializes.
pub(crate) fn bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}
