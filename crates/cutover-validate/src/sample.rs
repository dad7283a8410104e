//! The latency sample: a few short streamed answers in a row, giving the median time to
//! the first token and the median output rate (completion tokens from the usage chunk,
//! else one per content chunk, over the time after the first token).

use std::time::Duration;

use serde_json::json;

use super::assemble::assemble;
use super::exchange::Target;

/// Streamed answers in the sample.
pub const SAMPLE_SIZE: usize = 5;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub answers: usize,
    /// Answers that failed (not 2xx, broken, no content).
    pub failed: usize,
    pub median_ttft: Option<Duration>,
    pub median_tokens_per_second: Option<f64>,
}

pub async fn run(target: &Target) -> Sample {
    let body = json!({"model": target.sent_model, "stream": true, "stream_options": {"include_usage": true},
                      "max_tokens": 48, "messages": [{"role": "user", "content": "Name three colours and one fruit."}]});
    let (mut ttfts, mut rates, mut failed) = (Vec::new(), Vec::new(), 0);
    for _ in 0..SAMPLE_SIZE {
        let streamed = match target.stream(&body).await {
            Ok(streamed) if streamed.status.is_success() => streamed,
            _ => {
                failed += 1;
                continue;
            }
        };
        let assembled = assemble(&streamed);
        let Some(ttft) = assembled.ttft() else {
            failed += 1;
            continue;
        };
        ttfts.push(ttft);
        let tokens = assembled
            .usage
            .as_ref()
            .and_then(|usage| usage["completion_tokens"].as_u64())
            .unwrap_or(assembled.content_times.len() as u64);
        let generating = streamed.total.saturating_sub(ttft).as_secs_f64();
        if generating > 0.0 {
            rates.push(tokens as f64 / generating);
        }
    }
    ttfts.sort_unstable();
    rates.sort_by(f64::total_cmp);
    Sample {
        answers: SAMPLE_SIZE,
        failed,
        median_ttft: ttfts.get(ttfts.len() / 2).copied(),
        median_tokens_per_second: rates.get(rates.len() / 2).copied(),
    }
}
