//! Who asked, for the audit log. The bearer token proves only that the caller may use the
//! admin API; the name in `x-cutover-actor` is whatever the client claims, so it is
//! recorded as a claim (`admin-api (claimed: alice)`), and kept to a short, plain
//! charset so that it cannot forge log lines, spoof other fields or flood the event log.
//! The one exception is the gateway's own dashboard page, which names itself `dashboard`
//! (a client, not a person, so there is nobody's identity to overstate).

use http::HeaderMap;

/// The actor of a request that names nobody.
pub const ADMIN_API: &str = "admin-api";
/// The header in which a client names its user (the CLI sends `USER@cli`).
pub const HEADER: &str = "x-cutover-actor";
/// The longest claimed name kept.
const MAX_LEN: usize = 64;

/// The actor to record, or why the claimed name is refused (answered 400: a name
/// altered on the way in would make the audit log say something nobody claimed).
pub fn actor(headers: &HeaderMap) -> Result<String, String> {
    let Some(value) = headers.get(HEADER) else { return Ok(ADMIN_API.to_owned()) };
    let claimed = value
        .to_str()
        .ok()
        .filter(|name| is_plain(name))
        .ok_or_else(|| format!("{HEADER} must be 1 to {MAX_LEN} characters from A-Z a-z 0-9 . _ @ -"))?;
    // The dashboard, served by this gateway, names itself rather than a person.
    if claimed == super::dashboard::ACTOR {
        return Ok(claimed.to_owned());
    }
    Ok(format!("{ADMIN_API} (claimed: {claimed})"))
}

fn is_plain(name: &str) -> bool {
    (1..=MAX_LEN).contains(&name.len())
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'@' | b'-'))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn claimed(value: &[u8]) -> Result<String, String> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_bytes(value).unwrap());
        actor(&headers)
    }

    #[test]
    fn no_claim_is_the_admin_api_and_a_plain_name_is_recorded_as_claimed() {
        assert_eq!(actor(&HeaderMap::new()).unwrap(), "admin-api");
        assert_eq!(claimed(b"alice@cli").unwrap(), "admin-api (claimed: alice@cli)");
        assert_eq!(claimed(b"ci-bot_2.0").unwrap(), "admin-api (claimed: ci-bot_2.0)");
        assert_eq!(claimed(b"dashboard").unwrap(), "dashboard", "the gateway's own page");
    }

    #[test]
    fn names_outside_the_charset_or_too_long_are_refused() {
        let long = "a".repeat(MAX_LEN + 1);
        for bad in [&b""[..], b"alice bob", b"eve\tcontroller", b"x;y", "zoë".as_bytes(), long.as_bytes()] {
            assert!(claimed(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(claimed("a".repeat(MAX_LEN).as_bytes()).is_ok());
    }
}
