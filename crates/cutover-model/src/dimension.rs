//! The dimensions a mirrored pair is compared on, by name: each has its own agreement
//! rate (`cutover_shadow_agreement_ratio{dimension}`), may be a step's criterion
//! (`min_shadow_agreement = { tool_calls = 98 }`) and filters the kept diffs.

use std::fmt;

/// The most diffs a route keeps (`shadow.keep_diffs`), whatever the configuration says.
pub const MAX_KEPT_DIFFS: usize = 1000;

/// One thing the primary's and the candidate's answers to the same request must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// Both succeeded or both failed.
    Outcome = 0,
    /// The same `finish_reason` (or Responses `status`).
    FinishReason = 1,
    /// The same functions called, in the same order.
    ToolCalls = 2,
    /// Every tool call's arguments parse as JSON.
    ToolArgumentsJson = 3,
    /// Every tool call's arguments are valid against the request's schema of that tool.
    ToolArgumentsSchema = 4,
    /// JSON mode or structured output: both answers parse.
    JsonValid = 5,
    /// Structured output: both answers are valid against the request's schema.
    JsonSchema = 6,
    /// The texts are similar (token-set Jaccard at or above the route's threshold).
    Content = 7,
    /// The candidate reports the model it was asked for (after the alias map).
    Model = 8,
    /// The candidate's `prompt_tokens` is within tolerance of the primary's.
    PromptTokens = 9,
}

impl Dimension {
    pub const COUNT: usize = 10;
    pub const ALL: [Dimension; Dimension::COUNT] = [
        Dimension::Outcome,
        Dimension::FinishReason,
        Dimension::ToolCalls,
        Dimension::ToolArgumentsJson,
        Dimension::ToolArgumentsSchema,
        Dimension::JsonValid,
        Dimension::JsonSchema,
        Dimension::Content,
        Dimension::Model,
        Dimension::PromptTokens,
    ];

    /// Its name in metrics, the config, the admin API and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::Outcome => "outcome",
            Dimension::FinishReason => "finish_reason",
            Dimension::ToolCalls => "tool_calls",
            Dimension::ToolArgumentsJson => "tool_arguments_json",
            Dimension::ToolArgumentsSchema => "tool_arguments_schema",
            Dimension::JsonValid => "json_valid",
            Dimension::JsonSchema => "json_schema",
            Dimension::Content => "content",
            Dimension::Model => "model",
            Dimension::PromptTokens => "prompt_tokens",
        }
    }

    pub fn from_name(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|dimension| dimension.as_str() == name)
    }

    /// Every name, for messages that list what is accepted.
    pub fn names() -> String {
        Dimension::ALL.map(Dimension::as_str).join(", ")
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As its name, which is how the admin API shows it.
impl serde::Serialize for Dimension {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Dimension {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Dimension, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Dimension::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("{name:?} is not a shadow dimension ({})", Dimension::names()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dimension_is_found_by_its_name_and_all_is_in_discriminant_order() {
        for (index, dimension) in Dimension::ALL.into_iter().enumerate() {
            assert_eq!(dimension as usize, index);
            assert_eq!(Dimension::from_name(dimension.as_str()), Some(dimension));
        }
        assert_eq!(Dimension::from_name("latency"), None);
    }
}
