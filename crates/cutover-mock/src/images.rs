//! Image content parts: what the mock accepts as an image. A data URL is decoded far
//! enough to read the file signature (PNG, JPEG, GIF or WebP, like OpenAI's list); an
//! `http(s)` URL is taken on trust, since the mock fetches nothing.

/// Why an `image_url` is refused, as OpenAI words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ImageError {
    /// Neither a `data:` URL nor an `http(s)` one.
    NotAUrl,
    /// A data URL that is not base64 of a supported image.
    NotAnImage,
}

impl ImageError {
    pub(super) fn message(self) -> &'static str {
        match self {
            ImageError::NotAUrl => "Invalid image URL: expected an http(s) URL or a base64 data URL.",
            ImageError::NotAnImage => {
                "You uploaded an unsupported image. Please make sure your image is below 20 MB in size and is of \
                 one the following formats: ['png', 'jpeg', 'gif', 'webp']."
            }
        }
    }
}

/// Checks one `image_url.url`.
pub(super) fn check(url: &str) -> Result<(), ImageError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(ImageError::NotAUrl);
    };
    let (media_type, payload) = rest.split_once(";base64,").ok_or(ImageError::NotAnImage)?;
    if !media_type.starts_with("image/") || !payload.bytes().all(is_base64) {
        return Err(ImageError::NotAnImage);
    }
    // 16 characters decode to 12 bytes, enough for every signature below.
    let head = decode_prefix(&payload.as_bytes()[..payload.len().min(16)]);
    if is_image(&head) { Ok(()) } else { Err(ImageError::NotAnImage) }
}

fn is_image(head: &[u8]) -> bool {
    head.starts_with(b"\x89PNG\r\n\x1a\n")
        || head.starts_with(b"\xff\xd8\xff")
        || head.starts_with(b"GIF87a")
        || head.starts_with(b"GIF89a")
        || (head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP")
}

fn is_base64(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')
}

fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Standard base64, decoded up to the first padding or the end of `encoded`.
fn decode_prefix(encoded: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(encoded.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for value in encoded.iter().map_while(|&b| sextet(b)) {
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_are_images_only_when_their_bytes_say_so() {
        // "\x89PNG\r\n\x1a\n" + 4 more bytes.
        assert_eq!(check("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA"), Ok(()));
        assert_eq!(check("data:image/png;base64,aGVsbG8gd29ybGQ="), Err(ImageError::NotAnImage));
        assert_eq!(check("data:text/plain;base64,iVBORw0KGgoAAAANSUhEUgAA"), Err(ImageError::NotAnImage));
        assert_eq!(check("data:image/png,rawbytes"), Err(ImageError::NotAnImage));
        assert_eq!(check("https://example.com/cat.png"), Ok(()));
        assert_eq!(check("ftp://example.com/cat.png"), Err(ImageError::NotAUrl));
    }

    #[test]
    fn decodes_standard_base64() {
        assert_eq!(decode_prefix(b"Zm9vYmFy"), b"foobar");
        assert_eq!(decode_prefix(b"Zm8="), b"fo");
    }
}
