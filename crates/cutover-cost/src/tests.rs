//! Usage priced exactly, windowed in bounded memory.

use cutover_config::Price;

use super::*;

#[test]
fn cost_is_exact_in_nano_dollars_with_cached_and_reasoning_prices() {
    let price = Price { input: 2.5, output: 10.0, cached_input: Some(1.25), cache_write: None, reasoning: None };
    let usage = Usage { input: 1000, cached_input: 400, cache_write: 0, output: 300, reasoning: 100 };
    // 600 × 2,500 + 400 × 1,250 + 200 × 10,000 + 100 × 10,000 nano-dollars.
    assert_eq!(cost(&usage, &price), Nanos(1_500_000 + 500_000 + 2_000_000 + 1_000_000));
    let priced_reasoning = Price { reasoning: Some(0.001), ..price };
    assert_eq!(cost(&usage, &priced_reasoning), Nanos(1_500_000 + 500_000 + 2_000_000 + 100));
    let no_cache_price = Price { cached_input: None, ..price };
    assert_eq!(cost(&usage, &no_cache_price), Nanos(2_500_000 + 3_000_000));
}

#[test]
fn cache_writes_are_priced_as_cache_write_or_else_as_input() {
    // Claude Sonnet's shape: cache reads at a tenth of input, writes at 1.25×.
    let price = Price { input: 3.0, output: 15.0, cached_input: Some(0.3), cache_write: Some(3.75), reasoning: None };
    let usage = Usage { input: 1000, cached_input: 500, cache_write: 300, output: 100, reasoning: 0 };
    // 200 × 3,000 + 500 × 300 + 300 × 3,750 + 100 × 15,000 nano-dollars.
    assert_eq!(cost(&usage, &price), Nanos(600_000 + 150_000 + 1_125_000 + 1_500_000));
    let unpriced_writes = Price { cache_write: None, ..price };
    assert_eq!(cost(&usage, &unpriced_writes), Nanos(600_000 + 150_000 + 900_000 + 1_500_000));
}

#[test]
fn nanos_render_as_exact_dollars() {
    assert_eq!(Nanos(0).to_string(), "0");
    assert_eq!(Nanos(12_500).to_string(), "0.0000125");
    assert_eq!(Nanos(3_000_000_001).to_string(), "3.000000001");
    assert_eq!(Nanos(2_000_000_000).to_string(), "2");
    assert_eq!(Nanos(12_345_678).as_micros(), 12_345);
}

#[test]
fn the_window_sums_the_span_asked_and_forgets_what_is_older_than_a_day() {
    let mut window = Window::default();
    let one = Totals { requests: 1, known: 1, cost: Nanos(10), ..Totals::default() };
    let now = 1_000_000 * SLOT_SECONDS;
    window.add(now - 2 * 3600, 1, &one);
    window.add(now - 60, 1, &one);
    window.add(now, 0, &one);
    assert_eq!(window.sum(now, 3600)[1].requests, 1);
    assert_eq!(window.sum(now, WINDOW_SECONDS)[1].requests, 2);
    assert_eq!(window.sum(now, WINDOW_SECONDS)[0].cost, Nanos(10));
    // A day later the same slots hold new minutes: the old ones are gone.
    let later = now + WINDOW_SECONDS;
    window.add(later, 1, &one);
    assert_eq!(window.sum(later, WINDOW_SECONDS)[1].requests, 1);
    assert_eq!(window.sum(later, WINDOW_SECONDS)[0].requests, 0);
}

use super::window::Window;
