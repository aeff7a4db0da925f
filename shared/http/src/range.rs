//! `Range` requests for blob reads: a single byte range is honoured; several ranges, or a
//! header that cannot be read, are answered with the whole content, as RFC 9110 allows.

use http::HeaderMap;
use http::header::RANGE;
use http_range_header::parse_range_header;

/// What a `Range` header asks of a body of known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    Whole,
    /// Bytes `start..=end`, within the body.
    Partial {
        start: u64,
        end: u64,
    },
    /// Nothing of the body can satisfy the range: answer 416.
    Unsatisfiable,
}

pub fn range_request(headers: &HeaderMap, size: u64) -> RangeRequest {
    let Some(value) = headers.get(RANGE).and_then(|value| value.to_str().ok()) else {
        return RangeRequest::Whole;
    };
    let parsed = match parse_range_header(value) {
        Ok(parsed) if parsed.len() == 1 => parsed,
        // Several ranges, or a header we cannot read: the whole body.
        Ok(_) | Err(_) => return RangeRequest::Whole,
    };
    match parsed.validate(size) {
        Ok(ranges) => match ranges.first() {
            Some(range) => RangeRequest::Partial {
                start: *range.start(),
                end: *range.end(),
            },
            None => RangeRequest::Whole,
        },
        Err(_) => RangeRequest::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(range: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, range.parse().expect("header"));
        headers
    }

    #[test]
    fn ranges() {
        assert_eq!(range_request(&HeaderMap::new(), 10), RangeRequest::Whole);
        assert_eq!(
            range_request(&with("bytes=2-4"), 10),
            RangeRequest::Partial { start: 2, end: 4 }
        );
        assert_eq!(
            range_request(&with("bytes=8-"), 10),
            RangeRequest::Partial { start: 8, end: 9 }
        );
        assert_eq!(
            range_request(&with("bytes=-3"), 10),
            RangeRequest::Partial { start: 7, end: 9 }
        );
        assert_eq!(
            range_request(&with("bytes=5-100"), 10),
            RangeRequest::Partial { start: 5, end: 9 }
        );
        assert_eq!(
            range_request(&with("bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            range_request(&with("bytes=0-1,4-5"), 10),
            RangeRequest::Whole
        );
        assert_eq!(range_request(&with("lines=1-2"), 10), RangeRequest::Whole);
    }
}
