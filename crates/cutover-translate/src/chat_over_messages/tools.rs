//! The chat request's function tools as Anthropic tools, its `tool_choice` and
//! `parallel_tool_calls` as Anthropic's `tool_choice`, and an assistant's tool calls in
//! the history as `tool_use` blocks.

use serde_json::{Value, json};

use crate::json::{self, Object, item, member, present, refuse};
use crate::{Untranslatable, tool_call};

/// A function without `parameters` takes none.
fn no_parameters() -> Value {
    json!({"type": "object", "properties": {}})
}

/// Carries `tools`, `tool_choice` and `parallel_tool_calls` from the chat request
/// `client` into `upstream`. Without a tool (`tools` absent or `[]`) none of them is
/// sent: a choice among no tools has nothing to choose (it is still read, so a bad one is
/// refused, and so is one that forces a call: no tool could answer it).
pub(super) fn carry(client: &Object, upstream: &mut Object) -> Result<(), Untranslatable> {
    let tools = match present(client, "tools") {
        Some(tools) => {
            let tools = json::array(tools, "tools")?;
            let converted = tools.iter().enumerate().map(|(index, value)| tool(value, &item("tools", index)));
            converted.collect::<Result<Vec<_>, _>>()?
        }
        None => Vec::new(),
    };
    let serial = json::flag(client, "", "parallel_tool_calls")? == Some(false);
    let choice = present(client, "tool_choice").map(tool_choice).transpose()?;
    if tools.is_empty() {
        let forced = choice.as_ref().is_some_and(|choice| choice["type"] == "any" || choice["type"] == "tool");
        return if forced {
            Err(refuse("tool_choice", "it forces a tool call, and no tool is offered"))
        } else {
            Ok(())
        };
    }
    upstream.insert("tools".to_owned(), Value::Array(tools));
    // Without a choice, one is made only to carry `parallel_tool_calls: false`.
    let choice = choice.or_else(|| serial.then(|| json!({"type": "auto"})));
    if let Some(mut choice) = choice {
        if serial && choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
        upstream.insert("tool_choice".to_owned(), choice);
    }
    Ok(())
}

fn tool(tool: &Value, path: &str) -> Result<Value, Untranslatable> {
    let tool = json::object(tool, path)?;
    if json::kind(tool, path)? != "function" {
        return Err(refuse(member(path, "type"), "only function tools can be carried to Anthropic's API"));
    }
    json::only_known(tool, path, &["type", "function"])?;
    let function_path = member(path, "function");
    let function = json::object(json::required(tool, path, "function")?, &function_path)?;
    json::only_known(function, &function_path, &["name", "description", "parameters", "strict"])?;
    if present(function, "strict").and_then(Value::as_bool) == Some(true) {
        return Err(refuse(
            member(&function_path, "strict"),
            "Anthropic's API does not promise schema-exact arguments",
        ));
    }
    let name = json::string(json::required(function, &function_path, "name")?, &member(&function_path, "name"))?;
    let mut converted = json!({"name": name});
    if let Some(description) = present(function, "description") {
        converted["description"] = description.clone();
    }
    converted["input_schema"] = present(function, "parameters").cloned().unwrap_or_else(no_parameters);
    Ok(converted)
}

fn tool_choice(choice: &Value) -> Result<Value, Untranslatable> {
    match choice.as_str() {
        Some("none") => return Ok(json!({"type": "none"})),
        Some("auto") => return Ok(json!({"type": "auto"})),
        Some("required") => return Ok(json!({"type": "any"})),
        Some(_) => return Err(refuse("tool_choice", "a tool choice is `none`, `auto`, `required` or a function")),
        None => {}
    }
    let choice = json::object(choice, "tool_choice")?;
    if json::kind(choice, "tool_choice")? != "function" {
        return Err(refuse("tool_choice.type", "only a function can be chosen for Anthropic's API"));
    }
    json::only_known(choice, "tool_choice", &["type", "function"])?;
    let function = json::object(json::required(choice, "tool_choice", "function")?, "tool_choice.function")?;
    json::only_known(function, "tool_choice.function", &["name"])?;
    let name = json::string(json::required(function, "tool_choice.function", "name")?, "tool_choice.function.name")?;
    Ok(json!({"type": "tool", "name": name}))
}

/// An assistant's tool call as a `tool_use` block, its arguments parsed into the input
/// object Anthropic requires (no arguments at all, `""`, are `{}`).
pub(super) fn tool_use(call: &Value, path: &str) -> Result<Value, Untranslatable> {
    let call = json::object(call, path)?;
    json::only_known(call, path, &["id", "type", "function"])?;
    if present(call, "type").is_some_and(|kind| kind != "function") {
        return Err(refuse(member(path, "type"), "only function calls can be carried to Anthropic's API"));
    }
    let id = json::string(json::required(call, path, "id")?, &member(path, "id"))?;
    let function_path = member(path, "function");
    let function = json::object(json::required(call, path, "function")?, &function_path)?;
    json::only_known(function, &function_path, &["name", "arguments"])?;
    let name = json::string(json::required(function, &function_path, "name")?, &member(&function_path, "name"))?;
    let arguments_path = member(&function_path, "arguments");
    let arguments = present(function, "arguments").map(|arguments| json::string(arguments, &arguments_path));
    tool_call::tool_use(id, name, arguments.transpose()?.unwrap_or_default())
        .map_err(|_| refuse(arguments_path, "a tool call's arguments must be a JSON object"))
}
