//! The wire API a client calls and an upstream speaks: OpenAI's (chat completions and
//! the rest of `/v1`) or Anthropic's Messages API (`/v1/messages`). A client's API is
//! told by the path it calls (`Api::of_path`); an upstream's is its `api` setting.

use std::fmt;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Api {
    #[default]
    OpenAi,
    Anthropic,
}

impl Api {
    pub const ALL: [Api; 2] = [Api::OpenAi, Api::Anthropic];

    /// The configuration's name (`api = "openai"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
        }
    }

    pub fn from_name(name: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|api| api.as_str() == name)
    }

    /// The API of a client's `/v1/...` path: the Messages API's paths are Anthropic's,
    /// every other one OpenAI's.
    pub fn of_path(path: &str) -> Api {
        match path {
            "/v1/messages" | "/v1/messages/count_tokens" => Api::Anthropic,
            _ => Api::OpenAi,
        }
    }
}

/// The `error.type` of an Anthropic error answer with HTTP `status`, as Anthropic's
/// error reference lists them (503 is told as overload, like 529); any other 4xx is an
/// `invalid_request_error`, any other 5xx an `api_error`.
pub const fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_paths_are_anthropics_and_every_other_path_openais() {
        assert_eq!(Api::of_path("/v1/messages"), Api::Anthropic);
        assert_eq!(Api::of_path("/v1/messages/count_tokens"), Api::Anthropic);
        for path in ["/v1/chat/completions", "/v1/models", "/v1/messages/batches", "/v1/messagesx"] {
            assert_eq!(Api::of_path(path), Api::OpenAi, "{path}");
        }
    }

    #[test]
    fn anthropic_error_types_follow_the_status() {
        let cases = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (408, "invalid_request_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (529, "overloaded_error"),
        ];
        for (status, kind) in cases {
            assert_eq!(anthropic_error_type(status), kind, "{status}");
        }
    }

    #[test]
    fn names_round_trip() {
        for api in Api::ALL {
            assert_eq!(Api::from_name(api.as_str()), Some(api));
        }
        assert_eq!(Api::from_name("OpenAI"), None);
    }
}
