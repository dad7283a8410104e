//! The JSON of a step's saved evidence, in both stores: a snapshot that cannot be written
//! is an error and nothing is written in its place, and a stored one that does not parse
//! is an error naming where it is, never an empty step (which would let a step start its
//! evidence over, or a leader judge without an instance's requests, without a word).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

/// `value` (what `what` names, of `route`) as the JSON to store.
pub fn encode<T: Serialize>(route: &str, what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::EvidenceEncode { route: route.to_owned(), what, source })
}

/// The evidence stored as `json` in `place` (the store and the row: `state file x.db,
/// step_stats.snapshot`) for `route`.
pub fn decode<T: DeserializeOwned>(place: impl FnOnce() -> String, route: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::EvidenceCorrupt {
        place: place(),
        route: route.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use cutover_live::stats::{StepSnapshot, StepStats};

    #[test]
    fn a_value_json_cannot_hold_is_an_error_naming_the_route_not_an_empty_string() {
        // A map with non-string keys is one thing serde_json refuses to write.
        let unwritable: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
        let error = encode("default", "step evidence", &unwritable).unwrap_err();
        assert!(
            matches!(&error, StoreError::EvidenceEncode { route, what: "step evidence", .. } if route == "default")
        );
        assert!(
            error.to_string().starts_with("route \"default\": its step evidence could not be serialised"),
            "{error}"
        );
    }

    #[test]
    fn stored_evidence_that_does_not_parse_names_its_place_and_route() {
        let error = decode::<StepSnapshot>(|| "state file s.db, step_stats.snapshot".to_owned(), "default", "{garbage")
            .unwrap_err();
        assert!(matches!(&error, StoreError::EvidenceCorrupt { route, .. } if route == "default"), "{error}");
        let message = error.to_string();
        assert!(message.starts_with("state file s.db, step_stats.snapshot: the evidence saved for route \"default\""));
        assert!(message.contains("not read as an empty step"), "{message}");
    }

    #[test]
    fn evidence_round_trips() {
        let snapshot = StepStats::default().snapshot();
        let json = encode("default", "step evidence", &snapshot).unwrap();
        assert_eq!(decode::<StepSnapshot>(String::new, "default", &json).unwrap(), snapshot);
    }
}
