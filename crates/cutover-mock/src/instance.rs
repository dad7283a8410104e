//! A minimal instance of a JSON Schema: what the mock puts in tool-call arguments and
//! structured-output content so that they validate against the schema the client sent.
//!
//! "Minimal": the required properties only (all of them when `required` is absent, as
//! strict mode requires every property anyway), the first `enum` value or the `const`,
//! the first branch of `anyOf`/`oneOf`, every schema of `allOf` merged, as many array
//! items as `minItems` asks, strings of `minLength` filled with `x`, numbers at their
//! lower bound. Local `$ref`s (`#/$defs/...`, `#/definitions/...`) are followed to a
//! bounded depth, so a recursive schema ends in `null` instead of looping.

use serde_json::{Map, Value, json};

/// How deep nested schemas and `$ref`s are followed.
const MAX_DEPTH: usize = 16;

/// A minimal value valid against `schema`, resolving `$ref`s against `root`.
pub(super) fn instance(schema: &Value, root: &Value) -> Value {
    generate(schema, root, 0)
}

fn generate(schema: &Value, root: &Value, depth: usize) -> Value {
    let Some(schema) = schema.as_object() else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(target) = schema.get("$ref").and_then(Value::as_str).and_then(|r| resolve(r, root)) {
        return generate(target, root, depth + 1);
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(first) = schema.get(key).and_then(|branches| branches.get(0)) {
            return generate(first, root, depth + 1);
        }
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        let mut merged = Map::new();
        for part in all {
            match generate(part, root, depth + 1) {
                Value::Object(fields) => merged.extend(fields),
                other if all.len() == 1 => return other,
                _ => {}
            }
        }
        return Value::Object(merged);
    }
    match type_of(schema) {
        Some("object") => object(schema, root, depth),
        Some("array") => {
            let count = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0).min(16) as usize;
            let items = schema.get("items").unwrap_or(&Value::Null);
            Value::Array((0..count).map(|_| generate(items, root, depth + 1)).collect())
        }
        Some("string") => {
            let length = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0).min(256) as usize;
            Value::String(if length == 0 { "simulated".to_owned() } else { "x".repeat(length) })
        }
        Some("integer") => json!(lower_bound(schema).map_or(0, |low| low.ceil() as i64)),
        Some("number") => json!(lower_bound(schema).unwrap_or(0.0)),
        Some("boolean") => Value::Bool(false),
        Some("null") | None if !schema.contains_key("properties") => Value::Null,
        _ => object(schema, root, depth),
    }
}

/// The schema's `type`, or the first non-null one of a type list.
fn type_of(schema: &Map<String, Value>) -> Option<&str> {
    match schema.get("type")? {
        Value::String(kind) => Some(kind),
        Value::Array(kinds) => {
            let mut names = kinds.iter().filter_map(Value::as_str);
            let first = kinds.first().and_then(Value::as_str);
            names.find(|kind| *kind != "null").or(first)
        }
        _ => None,
    }
}

fn object(schema: &Map<String, Value>, root: &Value, depth: usize) -> Value {
    let mut fields = Map::new();
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return Value::Object(fields);
    };
    let required: Option<Vec<&str>> =
        schema.get("required").and_then(Value::as_array).map(|names| names.iter().filter_map(Value::as_str).collect());
    for (name, property) in properties {
        if required.as_ref().is_none_or(|required| required.contains(&name.as_str())) {
            fields.insert(name.clone(), generate(property, root, depth + 1));
        }
    }
    Value::Object(fields)
}

fn lower_bound(schema: &Map<String, Value>) -> Option<f64> {
    let inclusive = schema.get("minimum").and_then(Value::as_f64);
    let exclusive = schema.get("exclusiveMinimum").and_then(Value::as_f64).map(|low| low + 1.0);
    match (inclusive, exclusive) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A local reference (`#/...`) into `root`, as a JSON pointer.
fn resolve<'a>(reference: &str, root: &'a Value) -> Option<&'a Value> {
    root.pointer(reference.strip_prefix('#')?)
}
