//! An `image_url` part as an Anthropic image block: a base64 data URL as a base64 source,
//! an http(s) URL as a URL source. OpenAI's `detail` is a resolution hint: `auto` and
//! `high` are what Anthropic does anyway (it reads images at full resolution, up to its
//! size limit), `low` would change the answer and is refused.

use serde_json::{Value, json};

use crate::Untranslatable;
use crate::json::{self, Object, member, present, refuse};

pub(super) fn block(part: &Object, path: &str) -> Result<Value, Untranslatable> {
    json::only_known(part, path, &["type", "image_url"])?;
    let image_path = member(path, "image_url");
    let image = json::object(json::required(part, path, "image_url")?, &image_path)?;
    json::only_known(image, &image_path, &["url", "detail"])?;
    if let Some(detail) = present(image, "detail")
        && detail != "auto"
        && detail != "high"
    {
        return Err(refuse(member(&image_path, "detail"), "Anthropic's API has no low-resolution image mode"));
    }
    let url_path = member(&image_path, "url");
    let url = json::string(json::required(image, &image_path, "url")?, &url_path)?;
    Ok(json!({"type": "image", "source": source(url, &url_path)?}))
}

fn source(url: &str, path: &str) -> Result<Value, Untranslatable> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "url", "url": url}));
    }
    let data_url = url.strip_prefix("data:").and_then(|rest| rest.split_once(";base64,"));
    match data_url {
        Some((media_type, data)) if !media_type.is_empty() => {
            Ok(json!({"type": "base64", "media_type": media_type, "data": data}))
        }
        _ => Err(refuse(path, "an image is carried as an http(s) URL or a base64 data URL")),
    }
}
