//! Maven's version order (`ComparableVersion`), for `<latest>`, `<release>` and the order of
//! `<versions>` in generated metadata.
//!
//! A version is split into items at `.` and `-` and where digits meet letters. Numbers compare
//! as numbers; well-known qualifiers in their order
//! (`alpha` < `beta` < `milestone` < `rc` = `cr` < `snapshot` < release = `ga` = `final` < `sp`);
//! other qualifiers after those, alphabetically. Zeros and release qualifiers only pad
//! (`1.0` = `1` = `1.0.0-ga`, `2.0-rc1` = `2-rc1`), and a qualifier sorts below a number
//! (`1-rc` < `1` < `1.1`). Unlike Maven, `-` and `.` separate alike (Maven ranks `1-1` below
//! `1.1`); versions that differ only so are rare.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Number(u128),
    Qualifier(String),
}

/// The rank of a known qualifier, or `None` for any other.
fn qualifier_rank(qualifier: &str) -> Option<u8> {
    Some(match qualifier {
        "alpha" | "a" => 0,
        "beta" | "b" => 1,
        "milestone" | "m" => 2,
        "rc" | "cr" => 3,
        "snapshot" => 4,
        "" | "ga" | "final" | "release" => 5,
        "sp" => 6,
        _ => return None,
    })
}

fn compare_qualifiers(a: &str, b: &str) -> Ordering {
    match (qualifier_rank(a), qualifier_rank(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn items(version: &str) -> Vec<Item> {
    let lower = version.to_ascii_lowercase();
    let mut items = Vec::new();
    let mut current = String::new();
    let mut digits = false;
    let flush = |current: &mut String, digits: bool, items: &mut Vec<Item>| {
        if current.is_empty() {
            return;
        }
        items.push(if digits {
            Item::Number(current.parse().unwrap_or(u128::MAX))
        } else {
            Item::Qualifier(std::mem::take(current))
        });
        current.clear();
    };
    for c in lower.chars() {
        if c == '.' || c == '-' || c == '_' {
            flush(&mut current, digits, &mut items);
            continue;
        }
        let is_digit = c.is_ascii_digit();
        if !current.is_empty() && is_digit != digits {
            flush(&mut current, digits, &mut items);
        }
        digits = is_digit;
        current.push(c);
    }
    flush(&mut current, digits, &mut items);
    // Trailing "nothing" items do not count: 1.0 = 1, 1-ga = 1.
    while let Some(last) = items.last() {
        let empty = match last {
            Item::Number(n) => *n == 0,
            Item::Qualifier(q) => qualifier_rank(q) == Some(5),
        };
        if !empty {
            break;
        }
        items.pop();
    }
    items
}

fn compare_items(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (Some(Item::Number(a)), Some(Item::Number(b))) => a.cmp(b),
        (Some(Item::Qualifier(a)), Some(Item::Qualifier(b))) => compare_qualifiers(a, b),
        // A number beats a qualifier.
        (Some(Item::Number(_)), Some(Item::Qualifier(_))) => Ordering::Greater,
        (Some(Item::Qualifier(_)), Some(Item::Number(_))) => Ordering::Less,
        // Against nothing: a zero pads (2.0-rc1 is 2-rc1), any other number is more; a
        // qualifier is compared to a release.
        (Some(Item::Number(n)), None) => n.cmp(&0),
        (None, Some(Item::Number(n))) => 0.cmp(n),
        (Some(Item::Qualifier(q)), None) => compare_qualifiers(q, ""),
        (None, Some(Item::Qualifier(q))) => compare_qualifiers("", q),
    }
}

/// Compares two Maven versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (items(a), items(b));
    (0..a.len().max(b.len()))
        .map(|i| compare_items(a.get(i), b.get(i)))
        .find(|ordering| *ordering != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

pub fn is_snapshot(version: &str) -> bool {
    version.ends_with("-SNAPSHOT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_orderings() {
        let ordered = [
            "1-alpha-1",
            "1-alpha-2",
            "1-beta",
            "1-milestone-1",
            "1-rc-1",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-zzz",
            "1.0.1",
            "1.1",
            "1.2-SNAPSHOT",
            "1.2",
            "1.10",
            "2.0-rc1",
            "2.0",
            "10",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare(pair[0], pair[1]),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
            assert_eq!(
                compare(pair[1], pair[0]),
                Ordering::Greater,
                "{} > {}",
                pair[1],
                pair[0]
            );
        }
        for (a, b) in [
            ("1.0", "1"),
            ("1.0.0", "1"),
            ("1-ga", "1"),
            ("1.0-final", "1"),
            ("1-RC1", "1-rc-1"),
            ("1-cr1", "1-rc1"),
        ] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} = {b}");
        }
    }

    fn version() -> impl Strategy<Value = String> {
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-(alpha|beta|rc|SNAPSHOT|sp|foo)[0-9]{0,2})?"
    }

    proptest! {
        #[test]
        fn the_order_is_antisymmetric(a in version(), b in version()) {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }

        #[test]
        fn the_order_is_transitive(a in version(), b in version(), c in version()) {
            let mut sorted = [a, b, c];
            sorted.sort_by(|x, y| compare(x, y));
            prop_assert_ne!(compare(&sorted[0], &sorted[2]), Ordering::Greater);
        }

        #[test]
        fn a_release_is_above_its_snapshot(v in "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}") {
            let snapshot = format!("{v}-SNAPSHOT");
            prop_assert_eq!(compare(&snapshot, &v), Ordering::Less);
        }
    }
}
