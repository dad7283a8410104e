//! What the comparison needs of the mirrored request itself, read from its body in the
//! mirror's task: the tools offered with their parameter schemas (chat, Responses or
//! Messages), whether JSON (or a JSON Schema) was asked for, and the model the candidate
//! should report.

use serde_json::Value;

/// What the request asked for in the shape of the answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum JsonAsk {
    #[default]
    None,
    /// JSON mode (`json_object`): any JSON object.
    Object,
    /// Structured output with this schema.
    Schema(Value),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    /// The functions offered, each with its parameters' schema when it has one.
    pub tools: Vec<(String, Option<Value>)>,
    pub json: JsonAsk,
}

impl RequestFacts {
    /// Reads a chat, completions or Responses request (anything else has no facts).
    pub fn read(body: &[u8]) -> RequestFacts {
        let Ok(json) = serde_json::from_slice::<Value>(body) else { return RequestFacts::default() };
        RequestFacts { tools: tools(&json), json: json_ask(&json) }
    }

    /// The schema of the function `name`, if the request offered one.
    pub fn schema_of(&self, name: &str) -> Option<&Value> {
        self.tools.iter().find(|(offered, _)| offered == name).and_then(|(_, schema)| schema.as_ref())
    }
}

/// Chat's `tools[].function`, and the flat `tools[]` of the Responses API and of
/// Anthropic's Messages (whose schema is `input_schema`) alike.
fn tools(json: &Value) -> Vec<(String, Option<Value>)> {
    let Some(tools) = json.get("tools").and_then(Value::as_array) else { return Vec::new() };
    tools
        .iter()
        .filter_map(|tool| {
            let function = tool.get("function").unwrap_or(tool);
            let name = function.get("name")?.as_str()?.to_owned();
            let schema = function.get("parameters").or_else(|| function.get("input_schema"));
            Some((name, schema.cloned()))
        })
        .collect()
}

/// Chat's `response_format` and the Responses API's `text.format`.
fn json_ask(json: &Value) -> JsonAsk {
    let format = json.get("response_format").or_else(|| json.get("text").and_then(|text| text.get("format")));
    let Some(format) = format else { return JsonAsk::None };
    match format.get("type").and_then(Value::as_str) {
        Some("json_object") => JsonAsk::Object,
        Some("json_schema") => {
            let schema = format.get("json_schema").and_then(|inner| inner.get("schema")).or(format.get("schema"));
            schema.cloned().map_or(JsonAsk::Object, JsonAsk::Schema)
        }
        _ => JsonAsk::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_tools_and_structured_output_are_read() {
        let facts = RequestFacts::read(
            br#"{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}},
                {"type":"function","function":{"name":"g"}}],
                "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"array"}}}}"#,
        );
        assert_eq!(facts.tools.len(), 2);
        assert_eq!(facts.schema_of("f"), Some(&serde_json::json!({"type":"object"})));
        assert_eq!(facts.schema_of("g"), None);
        assert_eq!(facts.json, JsonAsk::Schema(serde_json::json!({"type":"array"})));
    }

    #[test]
    fn responses_tools_and_json_mode_are_read() {
        let facts = RequestFacts::read(
            br#"{"model":"m","tools":[{"type":"function","name":"f","parameters":{}}],"text":{"format":{"type":"json_object"}}}"#,
        );
        assert_eq!(facts.tools[0].0, "f");
        assert_eq!(facts.json, JsonAsk::Object);
        assert_eq!(RequestFacts::read(b"not json"), RequestFacts::default());
    }

    #[test]
    fn messages_tools_are_read_with_their_input_schema() {
        let facts = RequestFacts::read(
            br#"{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#,
        );
        assert_eq!(facts.schema_of("f"), Some(&serde_json::json!({"type":"object"})));
        assert_eq!(facts.json, JsonAsk::None);
    }
}
