//! Wall-clock time as the gateway persists and prints it: Unix milliseconds, and their
//! UTC calendar fields for timestamps people read.

/// Unix milliseconds as UTC `[year, month, day, hour, minute, second]`, for timestamps
/// people read (days to civil date: H. Hinnant's algorithm, no date library).
pub fn utc_fields(unix_millis: i64) -> [i64; 6] {
    let seconds = unix_millis.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    [year, month, day, of_day / 3600, of_day % 3600 / 60, of_day % 60]
}

/// Milliseconds since the Unix epoch, for persisted timestamps.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}
