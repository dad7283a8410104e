//! A tool call in either API's shape: chat's `{id, type: "function", function: {name,
//! arguments}}`, whose arguments are JSON text, and Messages' `tool_use` block, whose
//! input is a JSON object — and the conversion between the text and the object.

use serde_json::{Value, json};

/// Tool call arguments that are not the JSON object Messages' `input` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotAnObject;

/// The arguments' compact JSON text for a `tool_use` input; no input is `{}`.
pub(crate) fn arguments(input: Option<&Value>) -> String {
    input.map_or_else(|| "{}".to_owned(), Value::to_string)
}

/// A tool call's arguments as a `tool_use` input, which must be a JSON object; no
/// arguments at all (some models send `""` for a function without parameters) are `{}`.
pub(crate) fn input(arguments: &str) -> Result<Value, NotAnObject> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str(arguments) {
        Ok(input @ Value::Object(_)) => Ok(input),
        _ => Err(NotAnObject),
    }
}

/// Chat's tool call for a `tool_use` block's `id`, `name` and `input`.
pub(crate) fn chat(id: &str, name: &str, input: Option<&Value>) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments(input)}})
}

/// Messages' `tool_use` block for a chat tool call's `id`, `name` and `arguments`.
pub(crate) fn tool_use(id: &str, name: &str, arguments: &str) -> Result<Value, NotAnObject> {
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input(arguments)?}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_object_becomes_compact_arguments_and_no_input_is_an_empty_object() {
        assert_eq!(arguments(Some(&json!({"location": "Hanoi"}))), "{\"location\":\"Hanoi\"}");
        assert_eq!(arguments(None), "{}");
    }

    #[test]
    fn arguments_become_the_input_object_and_blank_arguments_are_empty() {
        assert_eq!(input(" {\"a\": 1} "), Ok(json!({"a": 1})));
        assert_eq!(input(""), Ok(json!({})));
        assert_eq!(input("  "), Ok(json!({})));
    }

    #[test]
    fn arguments_that_are_not_a_json_object_are_no_input() {
        for arguments in ["[1, 2]", "{\"a\":", "7", "null"] {
            assert_eq!(input(arguments), Err(NotAnObject), "{arguments}");
        }
    }
}
