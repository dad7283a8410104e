//! What an answer cost, exactly: integer nano-dollars from the price table (USD per
//! million tokens is nano-dollars per token × 1,000, kept exact by `cutover check`, which
//! allows at most 3 decimals). Cached input is priced as `cached_input` (else as input),
//! input written to a prompt cache as `cache_write` (else as input), reasoning as
//! `reasoning` (else as output).

use std::fmt;

use cutover_config::Price;
use cutover_wire::usage::Usage;

/// An amount of US dollars, in nano-dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Nanos(pub u64);

impl Nanos {
    pub const PER_DOLLAR: u64 = 1_000_000_000;

    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / Self::PER_DOLLAR as f64
    }

    /// Whole micro-dollars (rounded down): the unit `cost_micros` speaks.
    pub fn as_micros(self) -> u64 {
        self.0 / 1000
    }
}

/// Exact dollars, all nine decimals: `$0.000012500` is written `0.0000125`.
impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / Self::PER_DOLLAR, self.0 % Self::PER_DOLLAR);
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Nano-dollars per token of a price in USD per million tokens.
fn per_token(usd_per_million: f64) -> u64 {
    // Exact for the prices `cutover check` accepts (at most 3 decimals, at most $1M).
    (usd_per_million * 1000.0).round() as u64
}

/// What `usage` cost at `price`.
pub fn cost(usage: &Usage, price: &Price) -> Nanos {
    let input = per_token(price.input);
    let cached = price.cached_input.map_or(input, per_token);
    let cache_write = price.cache_write.map_or(input, per_token);
    let output = per_token(price.output);
    let reasoning = price.reasoning.map_or(output, per_token);
    let parts = [
        (usage.input.saturating_sub(usage.cached_input).saturating_sub(usage.cache_write), input),
        (usage.cached_input, cached),
        (usage.cache_write, cache_write),
        (usage.output.saturating_sub(usage.reasoning), output),
        (usage.reasoning, reasoning),
    ];
    Nanos(parts.iter().fold(0u64, |total, (tokens, rate)| total.saturating_add(tokens.saturating_mul(*rate))))
}
