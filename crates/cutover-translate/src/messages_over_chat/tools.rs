//! The Messages request's tools as chat functions, and its `tool_choice` as chat's
//! `tool_choice` and `parallel_tool_calls`. Server tools (run by Anthropic) are refused.

use serde_json::{Value, json};

use crate::Untranslatable;
use crate::json::{self, Object, item, member, present, refuse};

/// Carries `tools` and `tool_choice` from the Messages request `client` into `chat`.
/// Without a tool (`tools` absent or `[]`) none of them is sent: OpenAI refuses an empty
/// `tools` and a `tool_choice` or `parallel_tool_calls` without tools, and a choice among
/// no tools has nothing to choose. The choice is still read, so a bad one is refused, and
/// so is one that forces a call (`any`, `tool`): no tool could answer it.
pub(super) fn carry(client: &Object, chat: &mut Object) -> Result<(), Untranslatable> {
    let functions = match present(client, "tools") {
        Some(tools) => {
            let tools = json::array(tools, "tools")?;
            let functions = tools.iter().enumerate().map(|(index, tool)| function(tool, &item("tools", index)));
            functions.collect::<Result<Vec<_>, _>>()?
        }
        None => Vec::new(),
    };
    let choice = present(client, "tool_choice").map(|choice| tool_choice(json::object(choice, "tool_choice")?));
    let choice = choice.transpose()?;
    if functions.is_empty() {
        let forced = choice.as_ref().is_some_and(|(choice, _)| choice != "auto" && choice != "none");
        return if forced {
            Err(refuse("tool_choice", "it forces a tool call, and no tool is offered"))
        } else {
            Ok(())
        };
    }
    chat.insert("tools".to_owned(), Value::Array(functions));
    if let Some((choice, parallel)) = choice {
        chat.insert("tool_choice".to_owned(), choice);
        if let Some(parallel) = parallel {
            chat.insert("parallel_tool_calls".to_owned(), Value::Bool(parallel));
        }
    }
    Ok(())
}

/// A custom tool as a function; its `cache_control` is dropped.
fn function(tool: &Value, path: &str) -> Result<Value, Untranslatable> {
    let tool = json::object(tool, path)?;
    if let Some(kind) = present(tool, "type")
        && kind != "custom"
    {
        return Err(refuse(member(path, "type"), "server tools run at Anthropic, not behind chat completions"));
    }
    json::only_known(tool, path, &["type", "name", "description", "input_schema", "cache_control"])?;
    let name = json::string(json::required(tool, path, "name")?, &member(path, "name"))?;
    let mut function = json!({"name": name});
    if let Some(description) = present(tool, "description") {
        function["description"] = description.clone();
    }
    function["parameters"] = json::required(tool, path, "input_schema")?.clone();
    Ok(json!({"type": "function", "function": function}))
}

/// The chat `tool_choice`, and `parallel_tool_calls` when the choice says.
fn tool_choice(choice: &Object) -> Result<(Value, Option<bool>), Untranslatable> {
    json::only_known(choice, "tool_choice", &["type", "name", "disable_parallel_tool_use"])?;
    let mapped = match json::kind(choice, "tool_choice")? {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            let name = json::string(json::required(choice, "tool_choice", "name")?, "tool_choice.name")?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => return Err(refuse("tool_choice.type", "a tool choice is `auto`, `any`, `tool` or `none`")),
    };
    let disabled = present(choice, "disable_parallel_tool_use").and_then(Value::as_bool) == Some(true);
    Ok((mapped, disabled.then_some(false)))
}
