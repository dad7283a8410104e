//! How the gateway identifies itself to an upstream: its key in the header its API takes
//! it in (`Authorization: Bearer` for OpenAI's, `x-api-key` for Anthropic's), its own
//! account identity (`OpenAI-Organization`, `OpenAI-Project`), and for Anthropic the
//! `anthropic-version` the API requires when the client sent none. Made once per upstream
//! (`Upstream::identity`) and set on every request to it: traffic, probes, validation.

use http::{HeaderMap, HeaderName, HeaderValue, header};

use super::Upstream;
use cutover_model::Api;

pub const OPENAI_ORGANIZATION: HeaderName = HeaderName::from_static("openai-organization");
pub const OPENAI_PROJECT: HeaderName = HeaderName::from_static("openai-project");
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
/// The Messages API version sent when the client names none (the one its SDKs send).
pub const DEFAULT_ANTHROPIC_VERSION: HeaderValue = HeaderValue::from_static("2023-06-01");

/// A credential as a header: its name and its value, marked sensitive so that it never
/// appears in debug output.
pub type Credential = (HeaderName, HeaderValue);

/// The headers that identify the gateway to one upstream.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The upstream's own key, in its API's header.
    pub credential: Option<Credential>,
    organization: Option<HeaderValue>,
    project: Option<HeaderValue>,
    /// `anthropic-version`, set when the request carries none.
    version: Option<HeaderValue>,
}

impl Identity {
    /// Sets the identity in a request's `headers`. `client_credential`, the key the client
    /// presented, is sent where the upstream has no key of its own (an open gateway).
    pub fn apply(&self, headers: &mut HeaderMap, client_credential: Option<&Credential>) {
        if let Some((name, value)) = self.credential.as_ref().or(client_credential) {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(organization) = &self.organization {
            headers.insert(OPENAI_ORGANIZATION, organization.clone());
        }
        if let Some(project) = &self.project {
            headers.insert(OPENAI_PROJECT, project.clone());
        }
        if let Some(version) = &self.version
            && !headers.contains_key(ANTHROPIC_VERSION)
        {
            headers.insert(ANTHROPIC_VERSION, version.clone());
        }
    }
}

impl Upstream {
    /// The upstream's identity headers, made from its settings.
    pub fn identity(&self) -> Identity {
        let credential = self.api_key.as_ref().and_then(|key| {
            let (name, text) = match self.api {
                Api::OpenAi => (header::AUTHORIZATION, format!("Bearer {}", key.expose())),
                Api::Anthropic => (X_API_KEY, key.expose().to_owned()),
            };
            let mut value = HeaderValue::from_str(&text).ok()?;
            value.set_sensitive(true);
            Some((name, value))
        });
        Identity {
            credential,
            organization: self.organization.clone(),
            project: self.project.clone(),
            version: (self.api == Api::Anthropic).then_some(DEFAULT_ANTHROPIC_VERSION),
        }
    }
}
