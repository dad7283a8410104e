//! Which offered tools an answer calls, by one deterministic rule shared by chat and
//! messages so that tests can predict it, and under which name (the wrong-tool quirk).
//!
//! - no tools, or a choice of none: no call;
//! - a choice naming a tool: that tool, once;
//! - otherwise (auto, required / any, or no choice): every offered tool whose name occurs
//!   in the text of the last user message, in the order offered (parallel calls), or the
//!   first offered tool when none is named; only the first of them when parallel calls
//!   are off.

use std::borrow::Cow;

/// What the request's tool choice asks for, whatever the API's spelling of it.
#[derive(Debug, Clone, Copy)]
pub(super) enum ToolChoice<'a> {
    None,
    Forced(&'a str),
    Auto { parallel: bool },
}

/// The indexes into `offered` of the tools called, by the rule in the module documentation.
pub(super) fn chosen(offered: &[&str], choice: ToolChoice<'_>, prompt: &str) -> Vec<usize> {
    match choice {
        _ if offered.is_empty() => Vec::new(),
        ToolChoice::None => Vec::new(),
        ToolChoice::Forced(name) => offered.iter().position(|&tool| tool == name).into_iter().collect(),
        ToolChoice::Auto { parallel } => {
            let named: Vec<usize> = (0..offered.len()).filter(|&i| prompt.contains(offered[i])).collect();
            let mut chosen = if named.is_empty() { vec![0] } else { named };
            if !parallel {
                chosen.truncate(1);
            }
            chosen
        }
    }
}

/// The name the call of `offered[i]` carries: its own, or with the wrong-tool quirk the
/// next offered tool's (`<name>_alt` when it is the only one).
pub(super) fn called_name<'a>(offered: &[&'a str], i: usize, wrong_tool: bool) -> Cow<'a, str> {
    if !wrong_tool {
        Cow::Borrowed(offered[i])
    } else if offered.len() > 1 {
        Cow::Borrowed(offered[(i + 1) % offered.len()])
    } else {
        Cow::Owned(format!("{}_alt", offered[i]))
    }
}
