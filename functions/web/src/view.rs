//! What every page shares: the data the layout shows, and how sizes and dates read.

use chrono::{DateTime, Utc};

use crate::session::Session;

/// The layout's data: who is signed in, and the form secret its sign-out button posts.
pub struct Chrome {
    pub title: String,
    pub username: Option<String>,
    pub site_admin: bool,
    pub csrf: String,
}

impl Chrome {
    pub fn of(session: &Session, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            username: Some(session.username().to_string()),
            site_admin: session.principal.is_site_admin(),
            csrf: session.csrf.clone(),
        }
    }

    pub fn signed_out(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            username: None,
            site_admin: false,
            csrf: String::new(),
        }
    }
}

/// A size in bytes as people read it: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A moment as people read it, in UTC: `2026-12-03 19:40 UTC`.
pub fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A digest shortened for a table (the whole is in its `title` and copy button).
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    format!("{}…", &hex[..hex.len().min(12)])
}

/// One bar of a usage chart: a label, its bytes, and its length in the chart's units.
pub struct Bar {
    pub label: String,
    pub bytes: String,
    /// 0 to [`Bar::FULL`].
    pub length: u64,
    pub y: u64,
}

impl Bar {
    /// The length of a bar at the plan's limit.
    pub const FULL: u64 = 400;
    /// The height of each row of the chart.
    pub const ROW: u64 = 28;

    /// Bars for `values`, scaled against `limit` (a bar never passes the chart's end).
    pub fn chart(values: impl IntoIterator<Item = (String, u64)>, limit: u64) -> Vec<Bar> {
        values
            .into_iter()
            .enumerate()
            .map(|(row, (label, bytes))| Bar {
                label,
                bytes: size(bytes),
                length: scaled(bytes, limit),
                y: row as u64 * Self::ROW,
            })
            .collect()
    }
}

fn scaled(bytes: u64, limit: u64) -> u64 {
    if limit == 0 {
        return 0;
    }
    let length = (u128::from(bytes) * u128::from(Bar::FULL)).div_ceil(u128::from(limit));
    length.min(u128::from(Bar::FULL)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(10 * 1024 * 1024 * 1024), "10.0 GiB");
    }

    #[test]
    fn bars_are_scaled_against_the_limit_and_never_overflow() {
        let bars = Bar::chart([("a".into(), 0), ("b".into(), 50), ("c".into(), 500)], 100);
        let lengths: Vec<u64> = bars.iter().map(|bar| bar.length).collect();
        assert_eq!(lengths, vec![0, Bar::FULL / 2, Bar::FULL]);
        assert_eq!(bars[2].y, 2 * Bar::ROW);
        // Anything stored shows, however small against the limit.
        assert_eq!(scaled(1, u64::MAX), 1);
    }

    #[test]
    fn digests_shorten_to_their_first_hex_digits() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab…");
        assert_eq!(short_digest("abc"), "abc…");
    }
}
