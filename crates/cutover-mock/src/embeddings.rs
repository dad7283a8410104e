//! `POST /v1/embeddings`: one small deterministic vector per input, derived from a hash
//! of its text, as floats or (what the Python SDK asks for by default) base64.

use std::borrow::Cow;

use bytes::Bytes;
use cutover_net::body::{BoxBody, BoxError, json};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::ctx::Ctx;
use super::reply;
use super::wire::tokens_for_chars;

const DEFAULT_DIMENSIONS: usize = 8;
const MAX_DIMENSIONS: usize = 4096;

#[derive(Deserialize)]
struct EmbeddingRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    input: Value,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(borrow, default)]
    encoding_format: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<EmbeddingUsage>,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

pub(super) async fn handle(ctx: &Ctx, body: &Bytes) -> Result<Response<BoxBody>, BoxError> {
    let request: EmbeddingRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return Ok(reply::bad_request(&error)),
    };
    let Some(inputs) = inputs(&request.input) else {
        return Ok(reply::invalid_param(
            "input",
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
        ));
    };
    let (_, early) = ctx.before_answer(false).await?;
    if let Some(response) = early {
        return Ok(response);
    }
    let dimensions = request.dimensions.unwrap_or(DEFAULT_DIMENSIONS).clamp(1, MAX_DIMENSIONS);
    let base64 = request.encoding_format.as_deref() == Some("base64");
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, (text, _))| {
            let floats = vector(text, dimensions);
            let embedding = if base64 {
                Vector::Base64(encode_base64(&floats.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()))
            } else {
                Vector::Floats(floats)
            };
            Embedding { object: "embedding", index, embedding }
        })
        .collect();
    let tokens = inputs.iter().map(|(_, tokens)| tokens).sum();
    let list = EmbeddingList {
        object: "list",
        data,
        model: &request.model,
        usage: ctx.runtime.usage.usage(tokens, 0).map(|usage| {
            let tokens = usage.prompt_tokens();
            EmbeddingUsage { prompt_tokens: tokens, total_tokens: tokens }
        }),
    };
    Ok(json(StatusCode::OK, serde_json::to_vec(&list)?))
}

/// Each input as the bytes its vector derives from, with its token count; `None` when
/// `input` is empty or of the wrong shape.
fn inputs(input: &Value) -> Option<Vec<(Cow<'_, [u8]>, u64)>> {
    match input {
        Value::Array(items) if items.iter().all(Value::is_u64) => one_input(input).map(|input| vec![input]),
        Value::Array(items) if !items.is_empty() => items.iter().map(one_input).collect(),
        _ => one_input(input).map(|input| vec![input]),
    }
}

fn one_input(item: &Value) -> Option<(Cow<'_, [u8]>, u64)> {
    match item {
        Value::String(text) if !text.is_empty() => {
            Some((Cow::Borrowed(text.as_bytes()), tokens_for_chars(text.chars().count())))
        }
        Value::Array(ids) if !ids.is_empty() && ids.iter().all(Value::is_u64) => {
            Some((Cow::Owned(item.to_string().into_bytes()), ids.len() as u64))
        }
        _ => None,
    }
}

/// A unit vector of `dimensions` components, a pure function of `text`.
fn vector(text: &[u8], dimensions: usize) -> Vec<f32> {
    let raw: Vec<f64> = (0..dimensions as u64)
        .map(|seed| (xxh3_64_with_seed(text, seed) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    raw.iter().map(|x| (x / norm) as f32).collect()
}

/// Standard base64 with padding.
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i)) & 63;
            out.push(if i <= chunk.len() { char::from(ALPHABET[sextet as usize]) } else { '=' });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(encode_base64(b""), "");
        assert_eq!(encode_base64(b"f"), "Zg==");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(encode_base64(b"foo"), "Zm9v");
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = vector(b"hello", 8);
        assert_eq!(a, vector(b"hello", 8));
        assert_ne!(a, vector(b"world", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
